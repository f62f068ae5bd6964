package devproxy

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testkit/wait"
)

// The dev proxy serves the repo's envoy.yaml: the Lua setup's nginx behaviour (docs/origin.md; CORS
// preflight answered at the proxy on /api and /stomp, WebSocket on /stomp, the SPA for
// everything else) and the file's own rules (/v1 not exposed, x-server-name removed
// after routing, normalised paths), with the real filter and the real registrar.
func TestServesRepoEnvoyConfig(t *testing.T) {
	w := startWorld(t)
	const origin = "https://cms.example.com" // the origin envoy.yaml's CORS policy names

	t.Run("preflight answered at the proxy", func(t *testing.T) {
		for _, path := range []string{"/api/servers/register", "/stomp/info"} {
			before := w.blue.count() + w.green.count()
			a := w.do(t, "OPTIONS", path, "Origin", origin, "Access-Control-Request-Method", "POST",
				"Access-Control-Request-Headers", "content-type")
			want := map[string]string{
				"Access-Control-Allow-Origin":  origin,
				"Access-Control-Allow-Methods": "GET, POST, DELETE, PATCH, OPTIONS",
				"Access-Control-Allow-Headers": "Content-Type, Authorization",
				"Access-Control-Max-Age":       "86400",
			}
			if a.status != 200 {
				t.Errorf("%s preflight: %d %q, want 200", path, a.status, a.body)
			}
			for k, v := range want {
				if got := a.header.Get(k); got != v {
					t.Errorf("%s preflight: %s = %q, want %q", path, k, got, v)
				}
			}
			if a.header.Get("X-Upstream") != "" || w.blue.count()+w.green.count() != before {
				t.Errorf("%s preflight reached an upstream", path)
			}
		}
		// An origin the policy does not name: answered here too, without CORS headers,
		// so the browser refuses the actual request.
		a := w.do(t, "OPTIONS", "/api/servers", "Origin", "https://evil.example", "Access-Control-Request-Method", "DELETE")
		if a.status != 200 || a.header.Get("Access-Control-Allow-Origin") != "" || a.header.Get("X-Upstream") != "" {
			t.Errorf("preflight from another origin: %d allow-origin=%q upstream=%q", a.status,
				a.header.Get("Access-Control-Allow-Origin"), a.header.Get("X-Upstream"))
		}
	})

	t.Run("actual CORS request gets the allow-origin header", func(t *testing.T) {
		a := w.do(t, "GET", "/api/servers", "Origin", origin)
		if a.status != 200 || !strings.Contains(a.body, `"servers"`) || a.header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("GET /api/servers with Origin: %d allow-origin=%q %.100q", a.status, a.header.Get("Access-Control-Allow-Origin"), a.body)
		}
	})

	t.Run("v1 is not exposed", func(t *testing.T) {
		a := w.do(t, "GET", "/v1/routes")
		if strings.Contains(a.body, "revision") || a.header.Get("X-Upstream") != "frontend" {
			t.Errorf("/v1/routes: %d %q from %q, want the SPA frontend, not the registrar", a.status, a.body, a.header.Get("X-Upstream"))
		}
	})

	t.Run("SPA fallback", func(t *testing.T) {
		for _, path := range []string{"/", "/stores/42/settings", "/system"} {
			a := w.do(t, "GET", path, "X-Server-Name", "web-1")
			if a.status != 200 || !strings.Contains(a.body, "SPA index.html") {
				t.Errorf("%s: %d %q, want the frontend's index.html", path, a.status, a.body)
			}
		}
	})

	t.Run("x-server-name removed after routing", func(t *testing.T) {
		a := w.do(t, "GET", "/sys/logs", "X-Server-Name", "web-1")
		if a.status != 200 || a.header.Get("X-Upstream") != "target" {
			t.Fatalf("/sys/logs: %d %q", a.status, a.body)
		}
		if v := w.target.lastHeader().Values("X-Server-Name"); len(v) != 0 {
			t.Errorf("the target got X-Server-Name %q; envoy.yaml removes it on /sys", v)
		}
	})

	t.Run("WebSocket", func(t *testing.T) {
		addr := strings.TrimPrefix(w.proxy.URL, "http://")
		if status, from := upgrade(t, addr, "/stomp/ws"); status != 101 || (from != "blue" && from != "green") {
			t.Errorf("/stomp upgrade: %d from %q, want 101 from the app", status, from)
		}
		if status, from := upgrade(t, addr, "/sys/ws", "X-Server-Name", "web-1"); status != 101 || from != "target" {
			t.Errorf("/sys upgrade: %d from %q, want 101 from web-1's target", status, from)
		}
		if status, _ := upgrade(t, addr, "/api/ws"); status != 403 {
			t.Errorf("/api upgrade: %d, want 403 (not enabled on that route)", status)
		}
	})

	t.Run("app instances blue and green both serve", func(t *testing.T) {
		seen := map[string]bool{}
		for i := 0; i < 4; i++ {
			seen[w.do(t, "GET", "/stomp/info").header.Get("X-Upstream")] = true
		}
		if !seen["blue"] || !seen["green"] {
			t.Errorf("/stomp went to %v, want both blue and green", seen)
		}
	})

	t.Run("paths are normalised before routing", func(t *testing.T) {
		// /api/../sys/x is /sys/x: routed by the filter, not sent to the registrar.
		a := w.do(t, "GET", "/api/%2e%2e/sys/x", "X-Server-Name", "web-1")
		if a.status != 200 || a.body != "target GET /sys/x" {
			t.Errorf("/api/%%2e%%2e/sys/x: %d %q, want web-1's target with /sys/x", a.status, a.body)
		}
		a = w.do(t, "GET", "//sys///x", "X-Server-Name", "web-1")
		if a.body != "target GET /sys/x" {
			t.Errorf("//sys///x: %d %q, want merged slashes", a.status, a.body)
		}
		// An escaped slash is unescaped and redirected (UNESCAPE_AND_REDIRECT).
		a = w.do(t, "GET", "/sys%2Fx?a=1", "X-Server-Name", "web-1")
		if loc := a.header.Get("Location"); a.status != 307 || loc != "/sys/x?a=1" {
			t.Errorf("/sys%%2Fx: %d location %q, want 307 to /sys/x?a=1", a.status, loc)
		}
	})

	t.Run("underscore headers refused", func(t *testing.T) {
		if a := w.do(t, "GET", "/sys/x", "X-Server-Name", "web-1", "X_Server_Name", "web-2"); a.status != 400 {
			t.Errorf("a header with underscores: %d %q, want 400", a.status, a.body)
		}
	})
}

// A part of the file the dev proxy does not implement stops it at start, by name.
func TestNewRefusesWhatItDoesNotImplement(t *testing.T) {
	cases := []struct {
		name    string
		replace []string
		want    string
	}{
		{"unknown HCM field", []string{"use_remote_address: true", "use_remote_address: true\n          xff_num_trusted_hops: 1"}, "xff_num_trusted_hops"},
		{"direct response route", []string{"- match: { prefix: / }\n                route:\n                  cluster: frontend\n                  timeout: 15s",
			"- match: { prefix: / }\n                direct_response: { status: 200 }"}, "direct_response"},
		{"load balancing policy", []string{"lb_policy: ROUND_ROBIN\n    per_connection_buffer_limit_bytes: 32768\n    health_checks:\n    - timeout: 1s\n      interval: 5s\n      unhealthy_threshold: 2\n      healthy_threshold: 1\n      tcp",
			"lb_policy: RANDOM\n    per_connection_buffer_limit_bytes: 32768\n    health_checks:\n    - timeout: 1s\n      interval: 5s\n      unhealthy_threshold: 2\n      healthy_threshold: 1\n      tcp"}, "lb_policy RANDOM"},
		{"fail open", []string{"# failure_policy unset = FAIL_CLOSED (503 when the VM has failed).", "failure_policy: FAIL_OPEN"}, "FAIL_OPEN"},
		{"unknown plugin key", []string{`"header": "x-server-name",`, `"headers": "x-server-name",`}, `unknown key "headers"`},
		{"bad plugin prefix", []string{`"path_prefixes": ["/sys"],`, `"path_prefixes": ["/sys/"],`}, `key "path_prefixes"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(context.Background(), Config{
				Wasm: []byte("not reached"), Envoy: repoEnvoy(t, c.replace...), Registrar: []string{"http://127.0.0.1:1"},
			})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New: err = %v, want one naming %s", err, c.want)
			}
		})
	}
}

// The routes match in the file's order, by Envoy's rules for each kind of match.
func TestRouteMatching(t *testing.T) {
	s, err := readSite(repoEnvoy(t))
	if err != nil {
		t.Fatal(err)
	}
	for path, cluster := range map[string]string{
		"/sys": "dynamic_forward_proxy_cluster", "/sys/x": "dynamic_forward_proxy_cluster",
		"/system": "frontend", "/api": "registrar", "/api/servers": "registrar", "/apix": "frontend",
		"/v1/routes": "frontend", "/stomp/ws": "app", "/": "frontend", "/index.html": "frontend",
	} {
		u, _ := url.Parse(path)
		if r := s.routeFor("proxy:8080", u.Path); r == nil || r.cluster != cluster {
			t.Errorf("%s → %v, want cluster %s", path, r, cluster)
		}
	}
}

// A failed upstream is reported by the server's name; its address stays in the log
// (docs/origin.md: targets are never shown to the browser).
func TestErrorsNameTheServerNotTheTarget(t *testing.T) {
	w := startWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	register(t, w.reg.URL(), "gone-1", dead)
	_, port, _ := net.SplitHostPort(dead)
	wait.Eventually(t, 10*time.Second, func() string {
		a := w.do(t, "GET", "/sys/x", "X-Server-Name", "gone-1")
		if a.status != 503 || !strings.Contains(a.body, "gone-1") {
			return fmt.Sprintf("gone-1: %d %q, want 503 naming the server", a.status, a.body)
		}
		if strings.Contains(a.body, port) || strings.Contains(a.body, "127.0.0.1") {
			t.Fatalf("the client's error shows the target's address: %q", a.body)
		}
		return ""
	})
}

// A client's Forwarded and X-Forwarded-Proto are not passed on: at the edge
// (use_remote_address) the proxy says what it saw, and nothing vouches for the rest.
func TestClientForwardedHeadersAreNotPassedOn(t *testing.T) {
	w := startWorld(t)
	for _, c := range []struct {
		path string
		rec  func() http.Header
	}{
		{"/sys/x", w.target.lastHeader},
		{"/api/servers", nil},
		{"/stomp/info", nil},
	} {
		a := w.do(t, "GET", c.path, "X-Server-Name", "web-1", "Forwarded", "for=203.0.113.9;proto=https",
			"X-Forwarded-Proto", "https", "X-Forwarded-For", "203.0.113.9")
		if a.status != 200 {
			t.Fatalf("%s: %d %q", c.path, a.status, a.body)
		}
		if c.rec == nil {
			continue
		}
		h := c.rec()
		if v := h.Values("Forwarded"); len(v) != 0 {
			t.Errorf("%s: upstream got Forwarded %q", c.path, v)
		}
		if v := h.Values("X-Forwarded-Proto"); len(v) != 1 || v[0] != "http" {
			t.Errorf("%s: upstream got X-Forwarded-Proto %q, want the proxy's own http", c.path, v)
		}
		if v := h.Get("X-Forwarded-For"); v != "203.0.113.9, 127.0.0.1" {
			t.Errorf("%s: upstream got X-Forwarded-For %q, want the client's list with the peer appended", c.path, v)
		}
	}
	// The same on a route without the filter.
	w.do(t, "GET", "/stomp/info", "Forwarded", "for=203.0.113.9", "X-Forwarded-Proto", "https")
	for _, rec := range []*recorder{w.blue, w.green} {
		if h := rec.lastHeader(); h != nil && (h.Get("Forwarded") != "" || h.Get("X-Forwarded-Proto") != "http") {
			t.Errorf("/stomp: %s got Forwarded %q, X-Forwarded-Proto %q", rec.name, h.Get("Forwarded"), h.Get("X-Forwarded-Proto"))
		}
	}
}
