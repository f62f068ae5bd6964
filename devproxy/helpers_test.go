package devproxy

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"

	"switchyard/internal/testkit/bin"
	"switchyard/internal/testkit/envoycheck"
	"switchyard/internal/testkit/proc"
	"switchyard/internal/testkit/wait"
)

// repoEnvoy loads envoy.yaml with each old→new replacement applied (envoycheck.RepoConfig).
func repoEnvoy(t testing.TB, replace ...string) *bootstrapv3.Bootstrap {
	t.Helper()
	return envoycheck.RepoConfig(t, replace...)
}

// startRegistrar runs the built registrar on loopback with its own data file,
// loopback targets allowed, and none of the REGISTRAR_* settings of whoever runs the
// tests.
func startRegistrar(t testing.TB) *proc.Proc {
	t.Helper()
	return proc.StartRegistrar(t, "-data", filepath.Join(t.TempDir(), "servers.json"), "-allow-cidr", "127.0.0.0/8")
}

// world is the dev proxy on the repo's envoy.yaml with everything its routes need on
// loopback: the real registrar, the app cluster (two WebSocket-capable instances, blue
// and green), an SPA frontend, and a target registered as web-1.
type world struct {
	proxy    *httptest.Server
	p        *Proxy
	reg      *proc.Proc
	target   *recorder // web-1's target
	blue     *recorder // the app cluster's instances
	green    *recorder
	frontend *recorder
}

// startWorld starts it; extra edits the config first (replacement pairs for repoEnvoy).
// Targets on loopback are allowed.
func startWorld(t *testing.T, extra ...string) *world {
	t.Helper()
	return startWorldAllow(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, extra...)
}

// startWorldAllow is startWorld with the dev proxy's -allow-cidr ranges given.
func startWorldAllow(t *testing.T, allow []netip.Prefix, extra ...string) *world {
	t.Helper()
	w := &world{
		target: newRecorder(t, "target"), blue: newRecorder(t, "blue"), green: newRecorder(t, "green"),
		frontend: newRecorder(t, "frontend"),
	}
	w.reg = startRegistrar(t)
	register(t, w.reg.URL(), "web-1", w.target.addr)
	p, err := New(t.Context(), Config{
		Wasm:      bin.Read(t, "filter.wasm"),
		Envoy:     repoEnvoy(t, extra...),
		Registrar: []string{w.reg.URL()},
		Clusters: map[string][]string{
			"app":      {"http://" + w.blue.addr, "http://" + w.green.addr},
			"frontend": {"http://" + w.frontend.addr},
		},
		AllowCIDR: allow,
		Workers:   2,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("New on envoy.yaml: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	w.p = p
	w.proxy = httptest.NewServer(p)
	t.Cleanup(w.proxy.Close)
	wait.Eventually(t, 10*time.Second, func() string {
		if a := w.do(t, "GET", "/sys/ready", "X-Server-Name", "web-1"); a.status != 200 {
			return fmt.Sprintf("web-1 not routed yet: %d %s", a.status, a.body)
		}
		return ""
	})
	return w
}

type reply struct {
	status int
	body   string
	header http.Header
}

// do sends one request through the proxy; header is name, value pairs (a name may
// repeat).
func (w *world) do(t *testing.T, method, path string, header ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, w.proxy.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b), resp.Header}
}

// recorder is an upstream that answers "<name> <method> <uri>", keeps the last
// request's headers, serves an SPA's index.html for every GET of a path without a
// file extension, accepts WebSocket upgrades (then echoes bytes), and never answers
// a path ending in /hang.
type recorder struct {
	name, addr string
	mu         sync.Mutex
	last       http.Header
	hits       int
}

func newRecorder(t *testing.T, name string) *recorder {
	rec := &recorder{name: name}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.last, rec.hits = r.Header.Clone(), rec.hits+1
		rec.mu.Unlock()
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: test\r\nX-Upstream: %s\r\n\r\n", name)
			rw.Flush()
			io.Copy(conn, rw)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/hang") { // never answers
			<-r.Context().Done()
			return
		}
		w.Header().Set("X-Upstream", name)
		if name == "frontend" && r.Method == "GET" && !strings.Contains(r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:], ".") {
			io.WriteString(w, "<!doctype html><title>SPA index.html</title>") // try_files $uri /index.html
			return
		}
		fmt.Fprintf(w, "%s %s %s", name, r.Method, r.URL.RequestURI())
	}))
	t.Cleanup(srv.Close)
	rec.addr = srv.Listener.Addr().String()
	return rec
}

func (r *recorder) lastHeader() http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits
}

// upgrade sends a WebSocket upgrade for path through addr and, on 101, checks that
// bytes echo through the tunnel. It returns the status and the X-Upstream header.
func upgrade(t *testing.T, addr, path string, header ...string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var extra strings.Builder
	for i := 0; i+1 < len(header); i += 2 {
		extra.WriteString(header[i] + ": " + header[i+1] + "\r\n")
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: proxy\r\n%sConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", path, extra.String())
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("upgrade %s: %v", path, err)
	}
	if resp.StatusCode != 101 {
		return resp.StatusCode, resp.Header.Get("X-Upstream")
	}
	msg := "ping through the tunnel"
	io.WriteString(conn, msg)
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo through the tunnel of %s: %q, %v", path, buf, err)
	}
	return 101, resp.Header.Get("X-Upstream")
}
