package guard

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The guard in front of a handler that counts the requests reaching it, over real
// HTTP on 127.0.0.1. (The registrar's own tests run it in front of the real API.)
type target struct {
	url     string
	host    string // host:port of the server
	reached atomic.Int64
}

func fail(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"result": map[string]any{"success": false, "error": msg}})
}

func start(t *testing.T, o Options) *target {
	t.Helper()
	tg := &target{}
	o.Fail = fail
	if o.HostFree == nil {
		o.HostFree = []string{"/v1/", "/healthz"}
	}
	srv := httptest.NewServer(Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.reached.Add(1)
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}), o))
	t.Cleanup(srv.Close)
	tg.url, tg.host = srv.URL, strings.TrimPrefix(srv.URL, "http://")
	return tg
}

type req struct {
	method, path, host, body string
	hdr                      []string // name, value pairs
}

func (tg *target) do(t *testing.T, q req) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	r, err := http.NewRequest(q.method, tg.url+q.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if q.host != "" {
		r.Host = q.host
	}
	for i := 0; i+1 < len(q.hdr); i += 2 {
		r.Header.Set(q.hdr[i], q.hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const js = `{"host":"web-1","ipAddress":"10.1.2.3","serviceName":"logs"}`

func TestGuard(t *testing.T) {
	tokenless := Options{Hosts: []string{"reg.internal"}, Origins: []string{"https://cms.example.com"}, MaxBody: 64 << 10}
	withToken := tokenless
	withToken.TokenSet = true
	ct := []string{"Content-Type", "application/json"}
	cases := []struct {
		name string
		o    Options
		q    req
		code int    // 200: reached the handler
		want string // in the refusal
	}{
		// DNS rebinding: without a token only IPs, localhost and listed names.
		{"IPv4 Host", tokenless, req{"GET", "/api/servers", "", "", nil}, 200, ""},
		{"localhost Host", tokenless, req{"GET", "/", "localhost:9000", "", nil}, 200, ""},
		{"LOCALHOST. Host", tokenless, req{"GET", "/", "LOCALHOST.:9000", "", nil}, 200, ""},
		{"IPv6 Host", tokenless, req{"GET", "/", "[::1]:9000", "", nil}, 200, ""},
		{"other IP Host", tokenless, req{"GET", "/", "10.0.0.5:9000", "", nil}, 200, ""},
		{"listed Host", tokenless, req{"GET", "/", "Reg.Internal:9000", "", nil}, 200, ""},
		{"rebound name", tokenless, req{"GET", "/api/servers", "attacker.example:9000", "", nil}, 421, `"attacker.example:9000"`},
		{"rebound name writing", tokenless, req{"POST", "/api/servers/register", "attacker.example:9000", js, ct}, 421, "-allow-host"},
		{"rebound name on the page", tokenless, req{"GET", "/", "attacker.example", "", nil}, 421, "DNS rebinding"},
		{"under localhost is not localhost", tokenless, req{"GET", "/", "x.localhost.attacker.example", "", nil}, 421, ""},
		{"proxy feed with its authority", tokenless, req{"GET", "/v1/routes", "registrar", "", nil}, 200, ""},
		{"health probe by name", tokenless, req{"GET", "/healthz", "pod.cluster.local", "", nil}, 200, ""},
		{"any Host with a token", withToken, req{"GET", "/api/servers", "registrar.example.com", "", nil}, 200, ""},
		// Cross-origin writes.
		{"same-origin write", tokenless, req{"POST", "/api/servers/register", "", js, []string{"Content-Type", "application/json", "Origin", "self"}}, 200, ""},
		{"listed origin write", tokenless, req{"POST", "/api/servers/register", "", js, []string{"Content-Type", "application/json", "Origin", "https://cms.example.com"}}, 200, ""},
		{"foreign origin write", tokenless, req{"POST", "/api/servers/register", "", js, []string{"Content-Type", "application/json", "Origin", "https://attacker.example"}}, 403, `"https://attacker.example"`},
		{"foreign origin write with a token", withToken, req{"PUT", "/api/servers/web-1", "", js, []string{"Content-Type", "application/json", "Origin", "https://attacker.example"}}, 403, "-allow-origin"},
		{"foreign origin delete", tokenless, req{"DELETE", "/api/servers/web-1", "", "", []string{"Origin", "http://attacker.example"}}, 403, "attacker.example"},
		{"opaque origin write", tokenless, req{"POST", "/api/servers/register", "", js, []string{"Content-Type", "application/json", "Origin", "null"}}, 403, `"null"`},
		{"other port is another origin", tokenless, req{"POST", "/api/servers/register", "", js, []string{"Content-Type", "application/json", "Origin", "http://127.0.0.1:1"}}, 403, ""},
		{"foreign origin read", tokenless, req{"GET", "/api/servers", "", "", []string{"Origin", "https://attacker.example"}}, 200, ""},
		// Content-Type on writes with a body.
		{"JSON", tokenless, req{"POST", "/api/servers/register", "", js, ct}, 200, ""},
		{"JSON with charset", tokenless, req{"PUT", "/api/servers/web-1", "", js, []string{"Content-Type", "application/json; charset=utf-8"}}, 200, ""},
		{"JSON in capitals", tokenless, req{"POST", "/api/servers/register", "", js, []string{"Content-Type", "Application/JSON"}}, 200, ""},
		{"text/plain form", tokenless, req{"POST", "/api/servers/register", "", js, []string{"Content-Type", "text/plain"}}, 415, `got "text/plain"`},
		{"urlencoded form", tokenless, req{"POST", "/api/servers/register", "", "host=web-1", []string{"Content-Type", "application/x-www-form-urlencoded"}}, 415, "application/json"},
		{"multipart form", tokenless, req{"PUT", "/api/servers/web-1", "", "--x--", []string{"Content-Type", "multipart/form-data; boundary=x"}}, 415, "multipart"},
		{"JSON-looking type", tokenless, req{"POST", "/api/servers/register", "", js, []string{"Content-Type", "application/json-patch+json"}}, 415, ""},
		{"no Content-Type", tokenless, req{"POST", "/api/servers/register", "", js, nil}, 415, "no Content-Type"},
		{"bad Content-Type", tokenless, req{"POST", "/api/servers/register", "", js, []string{"Content-Type", ";;"}}, 415, ""},
		{"delete without a body", tokenless, req{"DELETE", "/api/servers/web-1", "", "", nil}, 200, ""},
		{"post without a body", tokenless, req{"POST", "/api/servers/register", "", "", nil}, 200, ""},
		// Size, declared.
		{"declared too large", tokenless, req{"POST", "/api/servers/register", "", strings.Repeat(" ", 64<<10+1), ct}, 413, "64 KiB"},
		{"at the limit", tokenless, req{"POST", "/api/servers/register", "", strings.Repeat(" ", 64<<10), ct}, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg := start(t, c.o)
			for i := 1; i < len(c.q.hdr); i += 2 {
				if c.q.hdr[i] == "self" {
					c.q.hdr[i] = tg.url
				}
			}
			resp, body := tg.do(t, c.q)
			if resp.StatusCode != c.code {
				t.Fatalf("%d, want %d: %s", resp.StatusCode, c.code, body)
			}
			if got := tg.reached.Load(); (got == 1) != (c.code == 200) {
				t.Errorf("the handler was reached %d times; want it reached only when the request passes", got)
			}
			if c.code != 200 {
				var doc struct{ Result struct{ Error string } }
				if err := json.Unmarshal([]byte(body), &doc); err != nil || !strings.Contains(doc.Result.Error, c.want) {
					t.Errorf("refusal %s does not say %q", body, c.want)
				}
			}
			for name, want := range map[string]string{
				"Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
				"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
			} {
				if got := resp.Header.Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestCSPForbidsFramingAndInlineCode(t *testing.T) {
	for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"} {
		if !strings.Contains(CSP, want) {
			t.Errorf("CSP %q lacks %q", CSP, want)
		}
	}
	if strings.Contains(CSP, "unsafe-inline") || strings.Contains(CSP, "unsafe-eval") {
		t.Errorf("CSP %q allows inline code", CSP)
	}
}

// A body declared larger than the limit is refused before it is read: a client that
// asked "Expect: 100-continue" gets 413 and no "100 Continue", and may not send it.
func TestExpectContinueTooLarge(t *testing.T) {
	tg := start(t, Options{MaxBody: 64 << 10})
	conn, err := net.Dial("tcp", tg.host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.WriteString(conn, "POST /api/servers/register HTTP/1.1\r\nHost: "+tg.host+"\r\n"+
		"Content-Type: application/json\r\nContent-Length: 10737418240\r\nExpect: 100-continue\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	if !strings.HasPrefix(status, "HTTP/1.1 413 ") {
		t.Fatalf("first answer %q, want 413 (and no 100 Continue before it)", strings.TrimSpace(status))
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(status), br)), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), "larger than 64 KiB") {
		t.Errorf("413 body %q does not say the limit", b)
	}
	if !resp.Close {
		t.Error("413 without Connection: close: the unread body would be taken for the next request")
	}
	if tg.reached.Load() != 0 {
		t.Error("the handler was reached")
	}
}
