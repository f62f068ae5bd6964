package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// testRegistrar is the real handler over a real data file in a temporary folder,
// served by httptest on 127.0.0.1.
type testRegistrar struct {
	URL     string
	Data    string
	Store   *Store
	Metrics *metrics
	release chan struct{}
}

type regOptions struct {
	token string
	allow string // -allow-cidr
	data  string // data file; default <tmp>/data/servers.json
}

func startRegistrar(t *testing.T, o regOptions) *testRegistrar { return startRegistrarTB(t, o) }

// startRegistrarB is startRegistrar for benchmarks.
func startRegistrarB(b *testing.B) *testRegistrar { return startRegistrarTB(b, regOptions{}) }

func startRegistrarTB(t testing.TB, o regOptions) *testRegistrar {
	t.Helper()
	if o.data == "" {
		o.data = filepath.Join(t.TempDir(), "data", "servers.json")
	}
	allow, err := ParseAllowCIDRs(o.allow)
	if err != nil {
		t.Fatal(err)
	}
	store, _, err := OpenStore(o.data)
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics()
	m.observeSnapshot(store.Snapshot())
	store.onCommit = m.observeCommit
	release := make(chan struct{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(newHandler(store, Policy{Allow: allow}, o.token, m, log, release))
	t.Cleanup(func() {
		close(release)
		srv.Close()
		store.Close()
	})
	return &testRegistrar{URL: srv.URL, Data: o.data, Store: store, Metrics: m, release: release}
}

// reply is one HTTP answer, read completely.
type reply struct {
	Code   int
	Header http.Header
	Body   []byte
}

// call sends one request; hdr is name/value pairs.
func call(t testing.TB, method, url, body string, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
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
	return reply{resp.StatusCode, resp.Header, b}
}

// apiResult is the decoded {"result": {...}} of an /api/ answer.
type apiResult struct {
	Success  bool     `json:"success"`
	Error    string   `json:"error"`
	Revision *uint64  `json:"revision"`
	Changed  *bool    `json:"changed"`
	Server   *Server  `json:"server"`
	Servers  []Server `json:"servers"`
}

// result decodes an /api/ answer, failing the test when it lacks the result shape.
func (r reply) result(t testing.TB) apiResult {
	t.Helper()
	var env struct {
		Result *apiResult `json:"result"`
	}
	if err := json.Unmarshal(r.Body, &env); err != nil || env.Result == nil {
		t.Fatalf("answer %d is not in the {\"result\": ...} shape: %v: %s", r.Code, err, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	return *env.Result
}

// routesBody is the decoded /v1/routes answer.
type routesBody struct {
	Revision uint64            `json:"revision"`
	Routes   map[string]string `json:"routes"`
}

func (r reply) routes(t testing.TB) routesBody {
	t.Helper()
	var b routesBody
	if err := json.Unmarshal(r.Body, &b); err != nil || b.Routes == nil {
		t.Fatalf("answer %d is not a route table: %v: %s", r.Code, err, r.Body)
	}
	return b
}

// register posts a registration and requires success.
func register(t testing.TB, base, host, addr, service string, hdr ...string) apiResult {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"host": host, "ipAddress": addr, "serviceName": service})
	r := call(t, "POST", base+"/api/servers/register", string(body), hdr...)
	if r.Code != http.StatusOK {
		t.Fatalf("register %s → %s: %d %s", host, addr, r.Code, r.Body)
	}
	res := r.result(t)
	if !res.Success || res.Revision == nil {
		t.Fatalf("register %s: %s", host, r.Body)
	}
	return res
}

func regBody(host, addr, service string) string {
	b, _ := json.Marshal(map[string]string{"host": host, "ipAddress": addr, "serviceName": service})
	return string(b)
}
