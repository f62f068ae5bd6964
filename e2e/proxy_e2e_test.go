package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/devproxy"
	"switchyard/internal/testkit/bin"
	"switchyard/internal/testkit/envoycheck"
	"switchyard/internal/testkit/proc"
	"switchyard/internal/testkit/wait"
)

// These tests run the built binaries (registrar, devproxy with the real filter.wasm)
// over real HTTP on loopback, as a user of `make run` would.

const propagation = 5 * time.Second // generous bound for CI; `make bench` measures the real figure

func TestProxyRoutesRegisteredServers(t *testing.T) {
	reg := startRegistrar(t)
	a, b := upstream(t, "alpha"), upstream(t, "beta")
	register(t, reg.url(), "web-1", a)
	px := startDevproxy(t, reg.url())

	wait.Eventually(t, propagation, func() string {
		if got := get(t, px.url()+"/sys/logs?tail=10", "X-Server-Name", "web-1"); got.status != 200 || !strings.HasPrefix(got.body, "alpha GET /sys/logs?tail=10") {
			return fmt.Sprintf("web-1: %d %q", got.status, got.body)
		}
		return ""
	})
	got := get(t, px.url()+"/sys/logs", "X-Server-Name", "web-1")
	if want := "xfh=" + px.Addr(); !strings.Contains(got.body, want) {
		t.Errorf("upstream saw %q, want %s (the original authority)", got.body, want)
	}

	tests := []struct {
		name       string
		path       string
		header     []string
		wantStatus int
		wantError  string
	}{
		{"missing header", "/sys/logs", nil, 400, "missing_server_name"},
		{"empty header", "/sys/logs", []string{"X-Server-Name", ""}, 400, "missing_server_name"},
		{"invalid name", "/sys/logs", []string{"X-Server-Name", "web/1"}, 400, "invalid_server_name"},
		{"unknown name", "/sys/logs", []string{"X-Server-Name", "nobody"}, 404, "unknown_server"},
		{"bare prefix", "/sys", []string{"X-Server-Name", "nobody"}, 404, "unknown_server"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := get(t, px.url()+tc.path, tc.header...)
			if got.status != tc.wantStatus || got.errorCode() != tc.wantError {
				t.Fatalf("got %d %q, want %d with error %q", got.status, got.body, tc.wantStatus, tc.wantError)
			}
			if ct := got.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("content-type %q, want application/json", ct)
			}
		})
	}

	// /system is not under /sys: the filter does not route it; envoy.yaml sends it to
	// the SPA frontend, which has no address here (503 no_healthy_upstream).
	if got := get(t, px.url()+"/system", "X-Server-Name", "web-1"); got.errorCode() != devproxy.CodeNoHealthyUpstream {
		t.Errorf("/system: %d %q, want the proxy's own no_healthy_upstream for the frontend cluster", got.status, got.body)
	}

	// Change, add and delete reach the routers without a restart.
	register(t, reg.url(), "web-1", b)
	register(t, reg.url(), "web-2", a)
	wait.Eventually(t, propagation, func() string {
		g1 := get(t, px.url()+"/sys/x", "X-Server-Name", "web-1")
		g2 := get(t, px.url()+"/sys/x", "X-Server-Name", "web-2")
		if !strings.HasPrefix(g1.body, "beta") || !strings.HasPrefix(g2.body, "alpha") {
			return fmt.Sprintf("web-1 → %q, web-2 → %q", g1.body, g2.body)
		}
		return ""
	})
	deleteServer(t, reg.url(), "web-1")
	wait.Eventually(t, propagation, func() string {
		if g := get(t, px.url()+"/sys/x", "X-Server-Name", "web-1"); g.status != 404 {
			return fmt.Sprintf("deleted web-1 still answers %d %q", g.status, g.body)
		}
		return ""
	})
	if g := get(t, px.url()+"/sys/x", "X-Server-Name", "web-2"); !strings.HasPrefix(g.body, "alpha") {
		t.Errorf("web-2 after deleting web-1: %d %q", g.status, g.body)
	}
}

func TestProxyAnswers503BeforeFirstTable(t *testing.T) {
	// A registrar address nothing listens on: the table never loads.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	px := startDevproxy(t, dead)
	got := get(t, px.url()+"/sys/logs", "X-Server-Name", "web-1")
	if got.status != 503 || got.errorCode() != "routes_not_loaded" || got.header.Get("Retry-After") != "1" {
		t.Fatalf("got %d %q retry-after=%q, want 503 routes_not_loaded with retry-after 1",
			got.status, got.body, got.header.Get("Retry-After"))
	}
	// The header checks still come first.
	if got := get(t, px.url()+"/sys/logs"); got.status != 400 {
		t.Errorf("missing header before the table: %d, want 400", got.status)
	}
}

func TestProxyKeepsRoutingWhileRegistrarIsDownAndAfterRestart(t *testing.T) {
	reg := startRegistrar(t)
	a, b := upstream(t, "alpha"), upstream(t, "beta")
	register(t, reg.url(), "web-1", a)
	px := startDevproxy(t, reg.url())
	routedTo := func(name, want string) func() string {
		return func() string {
			if g := get(t, px.url()+"/sys/x", "X-Server-Name", name); !strings.HasPrefix(g.body, want) {
				return fmt.Sprintf("%s → %d %q, want %s", name, g.status, g.body, want)
			}
			return ""
		}
	}
	wait.Eventually(t, propagation, routedTo("web-1", "alpha"))

	reg.Stop()
	for i := 0; i < 50; i++ { // fail-static: every request still routed while it is down
		if msg := routedTo("web-1", "alpha")(); msg != "" {
			t.Fatalf("request %d with the registrar down: %s", i, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}

	reg.Restart() // same address, same data file
	if msg := routedTo("web-1", "alpha")(); msg != "" {
		t.Fatalf("after the registrar restart: %s", msg)
	}
	register(t, reg.url(), "web-1", b)
	// The sync is in backoff after the outage: a change lands within the backoff cap.
	wait.Eventually(t, 35*time.Second, routedTo("web-1", "beta"))
}

func TestProxyPassesWebSocketUpgrade(t *testing.T) {
	// An upstream that accepts the upgrade and then echoes raw bytes.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want an upgrade", 400)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", "test")
		rw.Flush()
		io.Copy(conn, rw) // echo
	}))
	t.Cleanup(srv.Close)
	reg := startRegistrar(t)
	register(t, reg.url(), "ws-1", srv.Listener.Addr().String())
	px := startDevproxy(t, reg.url())
	wait.Eventually(t, propagation, func() string {
		if g := get(t, px.url()+"/sys/ws", "X-Server-Name", "ws-1"); g.status != 400 {
			return fmt.Sprintf("plain GET to the ws upstream: %d %q, want its own 400", g.status, g.body)
		}
		return ""
	})

	conn, err := net.DialTimeout("tcp", px.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /sys/ws HTTP/1.1\r\nHost: proxy\r\nX-Server-Name: ws-1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("upgrade answered %d, want 101", resp.StatusCode)
	}
	msg := "ping through the tunnel"
	io.WriteString(conn, msg)
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo through the upgraded connection: %q, %v", buf, err)
	}
}

func TestDevproxyRefusesModuleEnvoyWouldRefuse(t *testing.T) {
	// A valid wasm module with no proxy_abi_version_* export.
	empty := []byte("\x00asm\x01\x00\x00\x00")
	path := filepath.Join(t.TempDir(), "bad.wasm")
	if err := os.WriteFile(path, empty, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := proc.Run(t, "devproxy", proc.Config{Args: []string{
		"-listen", "127.0.0.1:0", "-admin", "", "-config", envoycheck.RepoConfigPath(t), "-wasm", path, "-registrar", "http://127.0.0.1:1"}})
	if code == 0 {
		t.Fatalf("devproxy started with a module that has no ABI marker; output:\n%s", out)
	}
	if !strings.Contains(strings.ToLower(out), "abi") {
		t.Errorf("the error does not name the missing ABI version:\n%s", out)
	}
}

// The registrar the tests start ignores the REGISTRAR_* settings of whoever runs them:
// with REGISTRAR_TOKEN set here, a token-less write still succeeds, as every test
// expects of its own registrar.
func TestRegistrarIgnoresCallersEnvironment(t *testing.T) {
	t.Setenv("REGISTRAR_TOKEN", "from-the-callers-shell")
	t.Setenv("REGISTRAR_ALLOW_CIDR", "10.0.0.0/8")
	reg := startRegistrar(t)
	register(t, reg.url(), "web-1", upstream(t, "alpha")) // fails on a 401 or a refused 127.0.0.1
}

// With several registrar addresses, the dev proxy uses a live one: here the first is
// a stopped replica, and both the table (the sync's long-poll) and /api writes
// through the proxy reach the second.
func TestDevproxyFailsOverBetweenRegistrarReplicas(t *testing.T) {
	stopped := startRegistrar(t)
	stopped.Stop()
	live := startRegistrar(t)
	a := upstream(t, "alpha")
	register(t, live.url(), "web-1", a)
	px := startDevproxy(t, stopped.url()+","+live.url())

	// The sync's first poll may go to the stopped replica; its retry (backoff from
	// 1 s) goes to the live one, which is the only healthy one left.
	wait.Eventually(t, propagation+2*time.Second, func() string {
		if g := get(t, px.url()+"/sys/x", "X-Server-Name", "web-1"); g.status != 200 || !strings.HasPrefix(g.body, "alpha") {
			return fmt.Sprintf("web-1: %d %q", g.status, g.body)
		}
		return ""
	})
	// Writes through the proxy's /api route reach the live replica, whichever comes
	// first in the round robin (a refused connection is retried on the other).
	for i := 0; i < 4; i++ {
		register(t, px.url(), fmt.Sprintf("web-%d", i+2), a)
	}
	if n := len(readTable(t, live.url()).Servers); n != 5 {
		t.Fatalf("the live replica holds %d servers, want 5", n)
	}
	wait.Eventually(t, propagation, func() string {
		if g := get(t, px.url()+"/sys/x", "X-Server-Name", "web-5"); g.status != 200 {
			return fmt.Sprintf("web-5: %d %q", g.status, g.body)
		}
		return ""
	})
}

// The built dev proxy on the repo's envoy.yaml, with the app and SPA clusters given on
// the command line, does what the Lua setup's nginx did (docs/origin.md): CORS preflights answered at the
// proxy, WebSocket on /stomp, the SPA for every other page.
func TestDevproxyServesSeedRoutes(t *testing.T) {
	reg := startRegistrar(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			rw.Flush()
			io.Copy(conn, rw)
			return
		}
		fmt.Fprintf(w, "app %s", r.URL.Path)
	}))
	t.Cleanup(app.Close)
	spa := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<title>index.html</title>") // every page is the SPA's index
	}))
	t.Cleanup(spa.Close)
	px := startDevproxy(t, reg.url(), "-cluster", "app="+app.URL, "-cluster", "frontend="+spa.URL)

	req, _ := http.NewRequest("OPTIONS", px.url()+"/api/servers/register", nil)
	req.Header.Set("Origin", "https://cms.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://cms.example.com" ||
		resp.Header.Get("Access-Control-Allow-Methods") != "GET, POST, DELETE, PATCH, OPTIONS" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if g := get(t, px.url()+"/stores/7/menu"); g.status != 200 || !strings.Contains(g.body, "index.html") {
		t.Errorf("SPA page: %d %q", g.status, g.body)
	}
	if g := get(t, px.url()+"/stomp/info"); g.body != "app /stomp/info" {
		t.Errorf("/stomp: %d %q", g.status, g.body)
	}

	conn, err := net.DialTimeout("tcp", px.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "GET /stomp/ws HTTP/1.1\r\nHost: proxy\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	wsResp, err := http.ReadResponse(br, nil)
	if err != nil || wsResp.StatusCode != 101 {
		t.Fatalf("/stomp upgrade: %v %v", wsResp, err)
	}
	io.WriteString(conn, "CONNECT\n\n\x00")
	buf := make([]byte, 10)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "CONNECT\n\n\x00" {
		t.Fatalf("STOMP frame through the tunnel: %q %v", buf, err)
	}
}

// A part of envoy.yaml the dev proxy does not implement stops the binary, named.
func TestDevproxyRefusesUnimplementedConfig(t *testing.T) {
	path := envoycheck.WriteRepoConfig(t, "use_remote_address: true", "use_remote_address: true\n          xff_num_trusted_hops: 1")
	code, out := proc.Run(t, "devproxy", proc.Config{Args: []string{
		"-listen", "127.0.0.1:0", "-admin", "", "-config", path, "-wasm", bin.Path(t, "filter.wasm"), "-registrar", "http://127.0.0.1:1"}})
	if code == 0 || !strings.Contains(out, "xff_num_trusted_hops") {
		t.Fatalf("exit %d; want a refusal naming xff_num_trusted_hops:\n%s", code, out)
	}
}
