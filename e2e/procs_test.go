package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testkit/apitest"
	"switchyard/internal/testkit/bin"
	"switchyard/internal/testkit/envoycheck"
	"switchyard/internal/testkit/proc"
	"switchyard/internal/testkit/wait"
)

// process is one of the project's binaries running for a test (proc.Start): on a
// free loopback port, stopped when the test ends; Restart keeps its address.
type process struct{ *proc.Proc }

func (p process) url() string { return p.URL() }

// startRegistrar starts the real registrar on a free port with a data file in a temp dir;
// loopback targets are allowed so tests can route to their own upstreams. The
// REGISTRAR_* settings of whoever runs the tests do not reach it.
func startRegistrar(t testing.TB, extra ...string) *process {
	t.Helper()
	data := filepath.Join(t.TempDir(), "servers.json")
	return &process{proc.StartRegistrar(t, append([]string{"-data", data, "-allow-cidr", "127.0.0.0/8"}, extra...)...)}
}

// startDevproxy runs the real dev proxy with the real filter on the repo's envoy.yaml
// against registrarURL (several comma-separated for a cluster of replicas); loopback
// targets are allowed, since the tests' upstreams are on this machine.
func startDevproxy(t testing.TB, registrarURL string, extra ...string) *process {
	t.Helper()
	args := append([]string{"-listen", "127.0.0.1:0", "-admin", "", "-workers", "2", "-config", envoycheck.RepoConfigPath(t), "-allow-cidr", "127.0.0.0/8",
		"-wasm", bin.Path(t, "filter.wasm"), "-registrar", registrarURL}, extra...)
	return &process{proc.Start(t, "devproxy", args...)}
}

// register puts name → target through POST /api/servers/register.
func register(t testing.TB, baseURL, name, target string) {
	t.Helper()
	write(t, "POST", baseURL+"/api/servers/register", apitest.RegBody(name, target, "e2e"))
}

// write sends a JSON body to the registrar's API and fails the test unless it is a 200.
func write(t testing.TB, method, url, body string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s %s: %d %s", method, url, body, resp.StatusCode, b)
	}
}

func deleteServer(t testing.TB, baseURL, name string) {
	t.Helper()
	req, _ := http.NewRequest("DELETE", baseURL+"/api/servers/"+name, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("delete %s: %d", name, resp.StatusCode)
	}
}

// answer is what a client got back.
type answer struct {
	status int
	body   string
	header http.Header
}

// errorCode is the "error" field of a JSON local reply.
func (a answer) errorCode() string {
	var v struct{ Error string }
	json.Unmarshal([]byte(a.body), &v)
	return v.Error
}

func get(t testing.TB, url string, header ...string) answer {
	t.Helper()
	return getWith(t, http.DefaultClient, url, header...)
}

// getWith is get on a given client (e.g. one keep-alive connection of its own).
func getWith(t testing.TB, c *http.Client, url string, header ...string) answer {
	t.Helper()
	a, err := tryGet(c, url, header...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tryGet is getWith for a goroutine other than the test's: it returns the error
// (a bad URL, a refused or broken connection) instead of failing the test.
func tryGet(c *http.Client, url string, header ...string) (answer, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return answer{}, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}, err
}

// upstream is a demo server that says who it is.
func upstream(t testing.TB, name string) (addr string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", name)
		fmt.Fprintf(w, "%s %s %s xfh=%s sn=%s", name, r.Method, r.URL.RequestURI(),
			r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Server-Name"))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// dial opens a raw TCP connection to p for a test that writes its own bytes; reads and
// writes time out after 10 s, and the connection is closed when the test ends.
func (p process) dial(t testing.TB) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn
}

// waitRouted waits (within propagation) until a GET of path naming name through the
// dev proxy p answers status: the table with name has reached its routers.
func (p process) waitRouted(t testing.TB, path, name string, status int) {
	t.Helper()
	wait.Eventually(t, propagation, func() string {
		if g := get(t, p.url()+path, "X-Server-Name", name); g.status != status {
			return fmt.Sprintf("GET %s naming %s: %d %q, want %d", path, name, g.status, g.body, status)
		}
		return ""
	})
}
