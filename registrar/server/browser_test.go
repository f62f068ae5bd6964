package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// What a page on another site can make a browser send to a registrar without a token
// (a text/plain form spelling a JSON body, a no-cors fetch) is refused, and the table stays as it was.
func TestBrowserWritesChangeNothing(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	register(t, reg.URL, "web-1", "10.1.2.3:8080", "logs")
	before := call(t, "GET", reg.URL+"/api/servers/web-1", "").Result(t)
	rev := reg.Store.Current().Revision()
	hostPort := strings.TrimPrefix(reg.URL, "http://")
	_, port, _ := net.SplitHostPort(hostPort)
	rebound := "attacker.example:" + port
	overwrite := `{"host":"web-1","ipAddress":"10.6.6.6","serviceName":"pwned","x":"="}`
	cases := []struct {
		name, method, path, body string
		hdr                      []string
		code                     int
		want                     string
	}{
		{"a text/plain form from another site", "POST", "/api/servers/register", overwrite,
			[]string{"Content-Type", "text/plain", "Origin", "https://attacker.example"}, 403, `"https://attacker.example"`},
		{"a no-cors fetch from another site", "POST", "/api/servers/register", overwrite,
			[]string{"Content-Type", "text/plain;charset=UTF-8", "Origin", "https://attacker.example"}, 403, "-allow-origin"},
		{"a text/plain body without Origin", "POST", "/api/servers/register", overwrite,
			[]string{"Content-Type", "text/plain"}, 415, "Content-Type: application/json"},
		{"an urlencoded form without Origin", "POST", "/api/servers/register", "host=web-1&ipAddress=10.6.6.6&serviceName=x",
			[]string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "application/x-www-form-urlencoded"},
		{"a body without Content-Type", "PUT", "/api/servers/web-1", `{"ipAddress":"10.6.6.6","serviceName":"x"}`,
			[]string{"Content-Type", ""}, 415, "no Content-Type"},
		{"JSON from another site", "PUT", "/api/servers/web-1", `{"ipAddress":"10.6.6.6","serviceName":"x"}`,
			[]string{"Origin", "https://attacker.example"}, 403, "attacker.example"},
		{"a delete from another site", "DELETE", "/api/servers/web-1", "",
			[]string{"Origin", "http://attacker.example"}, 403, "attacker.example"},
		// DNS rebinding: the page's own origin is the rebound name, so Origin matches
		// Host; only the Host check catches it.
		{"a write from a rebound name", "POST", "/api/servers/register", overwrite[:len(overwrite)-8] + "}",
			[]string{"Host", rebound, "Origin", "http://" + rebound}, 421, rebound},
		{"a read from a rebound name", "GET", "/api/servers", "",
			[]string{"Host", rebound}, 421, "-allow-host"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := call(t, c.method, reg.URL+c.path, c.body, c.hdr...)
			if r.Code != c.code {
				t.Fatalf("%d, want %d: %s", r.Code, c.code, r.Body)
			}
			if res := r.Result(t); !strings.Contains(res.Error, c.want) {
				t.Errorf("refusal %q does not say %q", res.Error, c.want)
			}
		})
	}
	after := call(t, "GET", reg.URL+"/api/servers/web-1", "").Result(t)
	if !reflect.DeepEqual(after.Server, before.Server) || reg.Store.Current().Revision() != rev {
		t.Errorf("refused writes changed the table: web-1 %+v → %+v, revision %d → %d", before.Server, after.Server, rev, reg.Store.Current().Revision())
	}
	// The registrar's own page (same origin, JSON) still writes.
	r := call(t, "PUT", reg.URL+"/api/servers/web-1", `{"ipAddress":"10.1.2.4","serviceName":"logs"}`, "Origin", reg.URL)
	if r.Code != 200 {
		t.Errorf("a same-origin JSON write: %d %s", r.Code, r.Body)
	}
}

// Every answer, the page's and the refusals too, carries the headers that keep the
// page from being framed, sniffed or leaking its address.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	open := startRegistrar(t, regOptions{})
	locked := startRegistrar(t, regOptions{token: "tok"})
	for _, c := range []struct {
		base, method, path string
		code               int
	}{
		{open.URL, "GET", "/", 200},
		{open.URL, "GET", "/app.js", 200},
		{open.URL, "GET", "/api/servers", 200},
		{open.URL, "GET", "/v1/routes", 200},
		{open.URL, "GET", "/healthz", 200},
		{open.URL, "GET", "/metrics", 200},
		{open.URL, "GET", "/api/nope", 404},
		{open.URL, "POST", "/", 405},
		{locked.URL, "GET", "/api/servers", 401},
	} {
		r := call(t, c.method, c.base+c.path, "")
		if r.Code != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, r.Code, c.code)
		}
		for name, want := range map[string]string{
			"Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY",
			"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
		} {
			if got := r.Header.Get(name); !strings.Contains(got, want) {
				t.Errorf("%s %s: %s = %q, want %q", c.method, c.path, name, got, want)
			}
		}
	}
}

// rawExchange writes req on a new connection and reads one answer; the connection is
// returned for more.
func rawExchange(t *testing.T, base, req string) (net.Conn, *bufio.Reader, *http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	status, err := br.Peek(12)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	return conn, br, resp, string(status) + " " + string(b)
}

// A 401 answer closes its connection, so clients without the token cannot hold
// connections open; an authorised client keeps its connection.
func TestUnauthorizedClosesConnection(t *testing.T) {
	reg := startRegistrar(t, regOptions{token: "tok"})
	host := strings.TrimPrefix(reg.URL, "http://")
	_, br, resp, _ := rawExchange(t, reg.URL, "GET /api/servers HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	if resp.StatusCode != 401 || !resp.Close {
		t.Fatalf("%d with Connection %q, want 401 and Connection: close", resp.StatusCode, resp.Header.Get("Connection"))
	}
	if n, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the 401 the connection is still open (read %v, %v)", n, err)
	}

	authed := "GET /api/servers HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer tok\r\n\r\n"
	conn, br, resp, _ := rawExchange(t, reg.URL, authed)
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("authorised: %d, close=%v; want 200 on a kept connection", resp.StatusCode, resp.Close)
	}
	io.WriteString(conn, authed)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("second request on the kept connection: %v %v", resp, err)
	}
}

// A write declaring 10 GB is refused with 413 before its body is read: a client that
// asked "Expect: 100-continue" is not told to send it.
func TestHugeBodyRefusedBeforeContinue(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	host := strings.TrimPrefix(reg.URL, "http://")
	_, _, resp, first := rawExchange(t, reg.URL, "POST /api/servers/register HTTP/1.1\r\nHost: "+host+
		"\r\nContent-Type: application/json\r\nContent-Length: 10737418240\r\nExpect: 100-continue\r\n\r\n")
	if !strings.HasPrefix(first, "HTTP/1.1 413") {
		t.Fatalf("first answer %q, want 413 without 100 Continue before it", first)
	}
	if !resp.Close || !strings.Contains(first, "larger than 64 KiB") {
		t.Errorf("413 answer %q (close=%v), want the limit named and the connection closed", first, resp.Close)
	}
}
