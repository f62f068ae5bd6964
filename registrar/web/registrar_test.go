package web_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/internal/testbin"
)

// registrar is the real registrar binary, started on a free loopback port with its
// own data file for one test, and stopped when the test ends.
type registrar struct {
	URL   string // http://127.0.0.1:port
	token string // "" when started without -token

	mu  sync.Mutex
	log bytes.Buffer // its stderr, shown when a test fails
}

// listenAddr finds the address in the registrar's "listening" log line, whether the
// line is slog text (addr=127.0.0.1:1234) or JSON ("addr":"127.0.0.1:1234").
var listenAddr = regexp.MustCompile(`addr"?[=:]"?([^\s",]+)`)

// startRegistrar runs bin/registrar with -listen 127.0.0.1:0 and waits for the
// address it chose. token, when not empty, is passed as -token.
func startRegistrar(t *testing.T, token string) *registrar {
	t.Helper()
	bin := testbin.Path(t, "registrar")
	args := []string{"-listen", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "servers.json")}
	if token != "" {
		args = append(args, "-token", token)
	}
	cmd := exec.Command(bin, args...)
	// Only the flags configure it: a REGISTRAR_* variable of the person running the
	// tests must not add a token or a CIDR list behind the test's back.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRAR_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout // one stream: the listening line may go to either
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	r := &registrar{token: token}
	addr := make(chan string, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			r.mu.Lock()
			r.log.WriteString(line + "\n")
			r.mu.Unlock()
			if m := listenAddr.FindStringSubmatch(line); m != nil && strings.Contains(line, "listening") {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("registrar log:\n%s", r.logText())
		}
	})
	select {
	case a := <-addr:
		r.URL = "http://" + a
	case <-exited:
		t.Fatalf("registrar exited before it printed a \"listening\" line with addr=...:\n%s", r.logText())
	case <-time.After(15 * time.Second):
		t.Fatalf("registrar printed no \"listening\" line with addr=... within 15s:\n%s", r.logText())
	}
	return r
}

func (r *registrar) logText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// apiServer is one entry of GET /api/servers.
type apiServer struct {
	Host        string `json:"host"`
	IPAddress   string `json:"ipAddress"`
	ServiceName string `json:"serviceName"`
	UpdatedAt   string `json:"updatedAt"`
}

// apiResult is the "result" object every /api/ answer carries.
type apiResult struct {
	Success  bool        `json:"success"`
	Error    string      `json:"error"`
	Revision int64       `json:"revision"`
	Servers  []apiServer `json:"servers"`
}

// call sends one API request over plain HTTP (with the token when the registrar has
// one) and returns the status and the decoded result.
func (r *registrar) call(t *testing.T, method, path string, body any) (int, apiResult) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, r.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var doc struct {
		Result apiResult `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("%s %s: HTTP %d, body is not the API's JSON: %v", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, doc.Result
}

// register creates or replaces a server through the API, for a case's starting state.
func (r *registrar) register(t *testing.T, host, addr, service string) {
	t.Helper()
	status, res := r.call(t, http.MethodPost, "/api/servers/register",
		map[string]string{"host": host, "ipAddress": addr, "serviceName": service})
	if status != http.StatusOK || !res.Success {
		t.Fatalf("registering %s: HTTP %d %+v", host, status, res)
	}
}

// remove deletes a server through the API.
func (r *registrar) remove(t *testing.T, host string) {
	t.Helper()
	if status, res := r.call(t, http.MethodDelete, "/api/servers/"+host, nil); status != http.StatusOK {
		t.Fatalf("deleting %s: HTTP %d %+v", host, status, res)
	}
}

// servers lists the table over HTTP: what the page shows must be what the API says.
func (r *registrar) servers(t *testing.T) (int64, map[string]apiServer) {
	t.Helper()
	status, res := r.call(t, http.MethodGet, "/api/servers", nil)
	if status != http.StatusOK || !res.Success {
		t.Fatalf("GET /api/servers: HTTP %d %+v", status, res)
	}
	byHost := make(map[string]apiServer, len(res.Servers))
	for _, s := range res.Servers {
		byHost[s.Host] = s
	}
	return res.Revision, byHost
}

func (s apiServer) String() string {
	return fmt.Sprintf("%s → %s (%s)", s.Host, s.IPAddress, s.ServiceName)
}
