// Package apitest holds the HTTP helpers the registrar's tests and e2e/ share: one request
// and its whole answer, the decoded /api/ result and /v1/routes table, a registration
// that must succeed.
package apitest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"switchyard/internal/registrarapi"
)

// Reply is one HTTP answer, read completely.
type Reply struct {
	Code   int
	Header http.Header
	Body   []byte
}

// Call sends one request; hdr is name/value pairs ("Host" sets the request's Host). A
// body goes as application/json unless hdr names another Content-Type.
func Call(t testing.TB, method, url, body string, hdr ...string) Reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" { // net/http sends req.Host, never a Host header
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Reply{resp.StatusCode, resp.Header, b}
}

// Result is the decoded {"result": {...}} of an /api/ answer: the registrar's own
// wire type.
type Result = registrarapi.Result

// Result decodes an /api/ answer, failing the test when it lacks the result shape.
func (r Reply) Result(t testing.TB) Result {
	t.Helper()
	var env struct {
		Result *Result `json:"result"` // a pointer, so an answer without "result" shows
	}
	if err := json.Unmarshal(r.Body, &env); err != nil || env.Result == nil {
		t.Fatalf("answer %d is not in the {\"result\": ...} shape: %v: %s", r.Code, err, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	return *env.Result
}

// Routes is the decoded version-1 /v1/routes answer.
type Routes struct {
	Revision uint64            `json:"revision"`
	Routes   map[string]string `json:"routes"`
}

// Routes decodes a version-1 /v1/routes answer, failing the test when it is not one.
func (r Reply) Routes(t testing.TB) Routes {
	t.Helper()
	var b Routes
	if err := json.Unmarshal(r.Body, &b); err != nil || b.Routes == nil {
		t.Fatalf("answer %d is not a route table: %v: %s", r.Code, err, r.Body)
	}
	return b
}

// Register posts a registration and requires success.
func Register(t testing.TB, base, name, target, service string, hdr ...string) Result {
	t.Helper()
	r := Call(t, "POST", base+"/api/servers/register", RegBody(name, target, service), hdr...)
	if r.Code != http.StatusOK {
		t.Fatalf("register %s → %s: %d %s", name, target, r.Code, r.Body)
	}
	res := r.Result(t)
	if !res.Success || res.Revision == nil {
		t.Fatalf("register %s: %s", name, r.Body)
	}
	return res
}

// RegBody is the JSON body of a registration.
func RegBody(name, target, service string) string {
	b, _ := json.Marshal(map[string]string{"host": name, "ipAddress": target, "serviceName": service})
	return string(b)
}

// ScaleName and ScaleTarget are the i-th server of a generated table.
func ScaleName(i int) string { return fmt.Sprintf("server-%07d.pods.example", i) }

func ScaleTarget(i int) string {
	return fmt.Sprintf("10.%d.%d.%d:8080", i/62500%250, i/250%250, i%250+1)
}

// WriteData writes a data file of n servers (ScaleName/ScaleTarget) at revision n in
// the registrar's current format, for benchmarks at scale, and returns its size.
func WriteData(t testing.TB, path string, n int) int64 {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, `{"revision": %d, "lineage": "5c0a1e0f5c0a1e0f5c0a1e0f5c0a1e0f", "servers": [`, n)
	// Names in byte order, as the registrar writes them.
	for i := range n {
		if i > 0 {
			w.WriteByte(',')
		}
		fmt.Fprintf(w, "\n{\"host\":%q,\"ipAddress\":%q,\"serviceName\":\"scale\",\"updatedAt\":\"2026-11-29T00:00:00Z\"}", ScaleName(i), ScaleTarget(i))
	}
	w.WriteString("\n]}\n")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
