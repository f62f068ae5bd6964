package e2e

// Hostile input end to end: registrations and X-Server-Name headers built to break
// parsers, forge lines or slip past the name and address rules, sent to the built
// registrar directly and through the built devproxy (real filter.wasm). Each must be
// answered with a clear 4xx that names what was wrong, and change nothing: not the
// revision, not the table, not where requests are routed.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/internal/testkit/apitest"
	"switchyard/internal/testkit/wait"
)

// countingUpstream is an upstream that counts the requests it receives, so a test can
// prove that a refused request never reached it.
func countingUpstream(t *testing.T) (addr string, hits *atomic.Int64) {
	t.Helper()
	hits = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintf(w, "upstream %s sn=%q", r.URL.RequestURI(), r.Header.Get("X-Server-Name"))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), hits
}

// tableState is what a refused write must leave as it was.
type tableState struct {
	Revision uint64
	Servers  []map[string]any
}

func readTable(t *testing.T, base string) tableState {
	t.Helper()
	got := get(t, base+"/api/servers")
	var env struct{ Result tableState }
	if got.status != 200 || json.Unmarshal([]byte(got.body), &env) != nil {
		t.Fatalf("GET /api/servers: %d %q", got.status, got.body)
	}
	return env.Result
}

// send makes one request with a body and returns the answer.
func send(t *testing.T, method, url, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

func TestHostileRegistrationsChangeNothing(t *testing.T) {
	// Of loopback only 127.0.0.1 is allowed, for the test's upstream: other loopback
	// forms must still be refused. The documentation ranges are allowed so that each
	// case is refused for the reason it tests, not for being outside the list.
	reg := startRegistrar(t, "-allow-cidr", "127.0.0.1/32,10.0.0.0/8,2001:db8::/32")
	up, hits := countingUpstream(t)
	register(t, reg.url(), "web-1", up)
	px := startDevproxy(t, reg.url())
	wait.Eventually(t, propagation, func() string {
		if g := get(t, px.url()+"/sys/x", "X-Server-Name", "web-1"); g.status != 200 {
			return fmt.Sprintf("web-1 not routed yet: %d %q", g.status, g.body)
		}
		return ""
	})
	before := readTable(t, reg.url())
	hitsBefore := hits.Load()

	const (
		host = "^host: "
		addr = "^ipAddress: "
		svc  = "^serviceName: "
	)
	long := strings.Repeat("a", 101)
	cases := []struct {
		name   string
		method string
		path   string // under the base URL
		body   string
		code   int
		want   string // regexp the error must match: it names the field or the body's fault
	}{
		{"host with CR LF", "POST", "/api/servers/register", apitest.RegBody("web-1\r\nX-Evil: 1", "10.1.2.3", "s"), 400, host},
		{"host with LF", "POST", "/api/servers/register", apitest.RegBody("web-1\nweb-2", "10.1.2.3", "s"), 400, host},
		{"host with NUL", "POST", "/api/servers/register", apitest.RegBody("web-1\x00", "10.1.2.3", "s"), 400, host},
		{"host of 101 characters", "POST", "/api/servers/register", apitest.RegBody(long, "10.1.2.3", "s"), 400, host},
		{"host fullwidth", "POST", "/api/servers/register", apitest.RegBody("ｗｅｂ-1", "10.1.2.3", "s"), 400, host},
		{"host with Cyrillic a", "POST", "/api/servers/register", apitest.RegBody("\u0430pi-1", "10.1.2.3", "s"), 400, host},
		{"host with Cyrillic e", "POST", "/api/servers/register", apitest.RegBody("w\u0435b-1", "10.1.2.3", "s"), 400, host},
		{"host dot-dot", "POST", "/api/servers/register", apitest.RegBody("..", "10.1.2.3", "s"), 400, host},
		{"address with CR LF", "POST", "/api/servers/register", apitest.RegBody("web-1", "10.1.2.3\r\nX-Evil: 1", "s"), 400, addr},
		{"address with NUL", "POST", "/api/servers/register", apitest.RegBody("web-1", "10.1.2.3\x00", "s"), 400, addr},
		{"address of 101 characters", "POST", "/api/servers/register", apitest.RegBody("web-1", strings.Repeat("a", 97)+".com", "s"), 400, addr},
		{"address fullwidth digits", "POST", "/api/servers/register", apitest.RegBody("web-1", "１0.1.2.3", "s"), 400, addr},
		{"address with Cyrillic o", "POST", "/api/servers/register", apitest.RegBody("web-1", "l\u043egs.example.com", "s"), 400, addr},
		{"address port 0", "POST", "/api/servers/register", apitest.RegBody("web-1", "10.1.2.3:0", "s"), 400, addr + "port '0'"},
		{"address port 65536", "POST", "/api/servers/register", apitest.RegBody("web-1", "10.1.2.3:65536", "s"), 400, addr + "port '65536'"},
		{"address IPv6 loopback", "POST", "/api/servers/register", apitest.RegBody("web-1", "[::1]", "s"), 400, addr + "refused: ::1 is a loopback"},
		{"address IPv4-mapped loopback", "POST", "/api/servers/register", apitest.RegBody("web-1", "[::ffff:127.0.0.2]:80", "s"), 400, addr + "refused: 127.0.0.2 is a loopback"},
		{"address bare IPv6", "POST", "/api/servers/register", apitest.RegBody("web-1", "::1", "s"), 400, addr},
		{"address IPv6 with zone", "POST", "/api/servers/register", apitest.RegBody("web-1", "[fe80::1%eth0]:80", "s"), 400, addr},
		{"address IPv6 with escaped zone", "POST", "/api/servers/register", apitest.RegBody("web-1", "[fe80::1%25eth0]", "s"), 400, addr},
		{"address IPv6 port 0", "POST", "/api/servers/register", apitest.RegBody("web-1", "[2001:db8::1]:0", "s"), 400, addr + "port '0'"},
		{"address hex IPv4", "POST", "/api/servers/register", apitest.RegBody("web-1", "0x7f000001", "s"), 400, addr},
		{"address cloud metadata", "POST", "/api/servers/register", apitest.RegBody("web-1", "169.254.169.254", "s"), 400, addr + "refused: .*link-local"},
		{"serviceName with CR LF", "POST", "/api/servers/register", apitest.RegBody("web-1", "10.1.2.3", "s\r\nforged"), 400, svc},
		{"not JSON", "POST", "/api/servers/register", "host=web-1&ipAddress=10.1.2.3", 400, "invalid JSON"},
		{"duplicate keys", "POST", "/api/servers/register", `{"host":"web-1","ipAddress":"10.1.2.3","serviceName":"s","ipAddress":"10.9.9.9"}`, 400, `"ipAddress" appears more than once`},
		{"10 MiB body", "POST", "/api/servers/register", apitest.RegBody("web-1", "10.1.2.3", strings.Repeat("x", 10<<20)), 413, "larger than 64 KiB"},
		{"PUT host with CR LF in the path", "PUT", "/api/servers/" + url.PathEscape("web-1\r\nX"), `{"ipAddress":"10.1.2.3","serviceName":"s"}`, 400, host + ".*in the path"},
		{"PUT host with NUL in the path", "PUT", "/api/servers/" + url.PathEscape("web-1\x00"), `{"ipAddress":"10.1.2.3","serviceName":"s"}`, 400, host + ".*in the path"},
		{"PUT host of 101 characters", "PUT", "/api/servers/" + long, `{"ipAddress":"10.1.2.3","serviceName":"s"}`, 400, host},
		{"PUT address with CR LF", "PUT", "/api/servers/web-1", `{"ipAddress":"10.1.2.3\r\n","serviceName":"s"}`, 400, addr},
		{"DELETE host with Cyrillic", "DELETE", "/api/servers/" + url.PathEscape("w\u0435b-1"), "", 400, host},
	}
	for _, via := range []struct{ name, base string }{{"registrar", reg.url()}, {"devproxy", px.url()}} {
		for _, c := range cases {
			t.Run(via.name+"/"+c.name, func(t *testing.T) {
				got := send(t, c.method, via.base+c.path, c.body)
				var env struct {
					Result struct {
						Success bool
						Error   string
					}
				}
				if err := json.Unmarshal([]byte(got.body), &env); err != nil {
					t.Fatalf("%d %.200q is not in the result shape: %v", got.status, got.body, err)
				}
				if got.status != c.code || env.Result.Success || !regexp.MustCompile(c.want).MatchString(env.Result.Error) {
					t.Fatalf("got %d %q, want %d with an error matching %q", got.status, env.Result.Error, c.code, c.want)
				}
				if strings.ContainsAny(env.Result.Error, "\r\n\x00") {
					t.Fatalf("the error echoes a control character: %q", env.Result.Error)
				}
			})
		}
	}

	if after := readTable(t, reg.url()); !reflect.DeepEqual(before, after) {
		t.Fatalf("hostile writes changed the table:\nbefore %+v\nafter  %+v", before, after)
	}
	// The table is what it was, so the routers got no new snapshot: web-1 still
	// goes where it went, and the refused writes reached no upstream.
	if hits.Load() != hitsBefore {
		t.Errorf("the upstream got %d requests during the hostile writes", hits.Load()-hitsBefore)
	}
	if g := get(t, px.url()+"/sys/x", "X-Server-Name", "web-1"); g.status != 200 || !strings.HasPrefix(g.body, "upstream /sys/x") {
		t.Fatalf("web-1 after the hostile writes: %d %q", g.status, g.body)
	}
}

// The limits are inclusive: a 100-character name registers and routes, while a
// 101-character or look-alike X-Server-Name is refused by the router.
func TestHostileServerNameHeader(t *testing.T) {
	reg := startRegistrar(t, "-allow-cidr", "127.0.0.1/32")
	up, hits := countingUpstream(t)
	name100 := strings.Repeat("n", 100)
	register(t, reg.url(), name100, up)
	register(t, reg.url(), "web-1", up)
	px := startDevproxy(t, reg.url())
	wait.Eventually(t, propagation, func() string {
		if g := get(t, px.url()+"/sys/x", "X-Server-Name", name100); g.status != 200 {
			return fmt.Sprintf("the 100-character name is not routed: %d %q", g.status, g.body)
		}
		return ""
	})
	hitsBefore := hits.Load()

	// Through Go's client: values it is willing to send.
	header := []struct{ name, value, wantError string }{
		{"101 characters", strings.Repeat("n", 101), "invalid_server_name"},
		{"fullwidth letters", "ｗｅｂ-1", "invalid_server_name"},
		{"Cyrillic e", "w\u0435b-1", "invalid_server_name"},
		{"Cyrillic a", "\u0430", "invalid_server_name"},
		{"slash", "web-1/", "invalid_server_name"},
		{"percent-encoded", "web%2D1", "invalid_server_name"},
	}
	for _, c := range header {
		t.Run("client/"+c.name, func(t *testing.T) {
			got := get(t, px.url()+"/sys/x", "X-Server-Name", c.value)
			if got.status != 400 || got.errorCode() != c.wantError {
				t.Fatalf("got %d %q, want 400 %s", got.status, got.body, c.wantError)
			}
		})
	}

	// Over raw TCP: bytes Go's client refuses to put in a header. The answer must be a
	// 400, from the proxy's HTTP server or from the filter, and never a routed request.
	raw := []struct{ name, header string }{
		{"CR inside the value", "X-Server-Name: web-1\rX-Evil: 1\r\n"},
		{"LF inside the value", "X-Server-Name: web-1\nX-Evil 1\r\n"},
		{"NUL inside the value", "X-Server-Name: web-1\x00\r\n"},
		{"NUL alone", "X-Server-Name: \x00\r\n"},
		{"folded continuation line", "X-Server-Name: web-1\r\n -evil\r\n"},
		{"space before the colon", "X-Server-Name : web-1\r\n"},
		{"DEL in the value", "X-Server-Name: web-1\x7f\r\n"},
	}
	for _, c := range raw {
		t.Run("raw/"+c.name, func(t *testing.T) {
			status, body := rawRequest(t, px.Addr(), "GET /sys/x HTTP/1.1\r\nHost: proxy\r\n"+c.header+"Connection: close\r\n\r\n")
			if status != 400 {
				t.Fatalf("got %d %q, want 400", status, body)
			}
		})
	}

	if n := hits.Load() - hitsBefore; n != 0 {
		t.Fatalf("%d hostile header request(s) were routed to the upstream", n)
	}
	if g := get(t, px.url()+"/sys/x", "X-Server-Name", "web-1"); g.status != 200 {
		t.Fatalf("web-1 after the hostile headers: %d %q", g.status, g.body)
	}
}

// rawRequest writes req as bytes on a new connection and reads one answer.
func rawRequest(t *testing.T, addr, req string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no HTTP answer to %q: %v", req, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
