package devproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Envoy's header limits (100 headers, 60 KiB) answer 431 before anything else runs.
func TestHeaderLimits(t *testing.T) {
	w := startWorld(t)
	many := func(n int) []string {
		h := []string{"X-Server-Name", "web-1"}
		for i := 0; i < n; i++ {
			h = append(h, fmt.Sprintf("X-Extra-%d", i), "v")
		}
		return h
	}
	if a := w.do(t, "GET", "/sys/x", many(90)...); a.status != 200 {
		t.Errorf("91 headers: %d %q, want 200", a.status, a.body)
	}
	if a := w.do(t, "GET", "/sys/x", many(100)...); a.status != 431 {
		t.Errorf("101 headers: %d %q, want 431", a.status, a.body)
	}
	if a := w.do(t, "GET", "/api/servers", "X-Big", strings.Repeat("b", 61<<10)); a.status != 431 {
		t.Errorf("a 61 KiB header: %d %.100q, want 431", a.status, a.body)
	}
}

// With the limits raised, a routed request with 40,000 distinct headers costs time
// linear in their number; looking each header's name up among all the others would
// be quadratic, 1.6 billion comparisons. The 5 s bound is loose so that only the
// quadratic rewrite fails it; BenchmarkRewriteManyHeaders measures the cost per header.
func TestManyHeadersRewriteInLinearTime(t *testing.T) {
	w := startWorld(t,
		"headers_with_underscores_action: REJECT_REQUEST", "headers_with_underscores_action: REJECT_REQUEST\n            max_headers_count: 50000",
		"normalize_path: true", "normalize_path: true\n          max_request_headers_kb: 4096")
	h := []string{"X-Server-Name", "web-1"}
	for i := 0; i < 40000; i++ {
		h = append(h, fmt.Sprintf("X-Header-%05d", i), "v")
	}
	start := time.Now()
	a := w.do(t, "GET", "/sys/many", h...)
	took := time.Since(start)
	if a.status != 200 || len(w.target.lastHeader()) < 40000 {
		t.Fatalf("40,000 headers: %d %.100q, the target got %d headers", a.status, a.body, len(w.target.lastHeader()))
	}
	if took > 5*time.Second {
		t.Errorf("40,000 headers took %v through the routed path", took)
	}
	t.Logf("40,000 headers through the routed path: %v", took)
}

// rawExchange writes head on a new connection, then body one byte per interval (all
// of it when interval is 0), and reports when the proxy closed the connection and
// the status it answered, if any.
func rawExchange(t *testing.T, addr, head, body string, interval time.Duration) (status int, closedAfter time.Duration) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	conn.SetDeadline(start.Add(20 * time.Second))
	io.WriteString(conn, head)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; i < len(body); i++ {
			select {
			case <-stop:
				return
			case <-time.After(interval):
			}
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
		}
	}()
	br := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(br, nil); err == nil {
		status = resp.StatusCode
		io.Copy(io.Discard, resp.Body)
	}
	_, err = io.Copy(io.Discard, br) // until the proxy closes
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Fatalf("the connection was still open after 20 s (status %d)", status)
	}
	return status, time.Since(start)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// A client that sends its body at 1 byte per 100 ms is cut by request_timeout
// (whole request) and one that stops sending by stream_idle_timeout; one whose
// upstream answered without reading the body is not waited for after the answer.
func TestSlowClientsDoNotHoldConnections(t *testing.T) {
	w := startWorld(t, "request_timeout: 60s", "request_timeout: 2s", "stream_idle_timeout: 300s", "stream_idle_timeout: 1s")
	addr := strings.TrimPrefix(w.proxy.URL, "http://")
	body := strings.Repeat("x", 1000)
	head := func(path string) string {
		return "POST " + path + " HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
	}

	// The registrar reads the whole body: request_timeout ends the trickle.
	if _, took := rawExchange(t, addr, head("/api/servers/register"), body, 100*time.Millisecond); took > 6*time.Second {
		t.Errorf("a trickled body to the registrar held the connection %v (request_timeout 2 s)", took)
	}
	// A client that stops sending half-way: stream_idle_timeout.
	if _, took := rawExchange(t, addr, head("/api/servers/register"), "", time.Hour); took > 5*time.Second {
		t.Errorf("a stalled body held the connection %v (stream_idle_timeout 1 s)", took)
	}
	// The app answers without reading: the answer arrives, and the trickle is not
	// waited for.
	status, took := rawExchange(t, addr, head("/stomp/info"), body, 100*time.Millisecond)
	if status != 200 || took > 5*time.Second {
		t.Errorf("an early answer: status %d, connection held %v", status, took)
	}
}

// Two X-Server-Name headers: routed by the first (the filter's reading), and the
// upstream sees neither (envoy.yaml removes the header on /sys), so no upstream can
// read another name than the one routed by. Headers the client's Connection header
// names belong to its hop and are not forwarded.
func TestDuplicateServerNameAndConnectionHeaders(t *testing.T) {
	w := startWorld(t)
	register(t, w.reg.URL(), "web-2", w.blue.addr)
	testNotWithin := func() {
		a := w.do(t, "GET", "/sys/dup", "X-Server-Name", "web-1", "X-Server-Name", "web-2",
			"Connection", "keep-alive, X-Secret", "X-Secret", "hop-only", "X-Kept", "yes")
		if a.status != 200 || a.header.Get("X-Upstream") != "target" {
			t.Fatalf("two names: %d %q from %q, want web-1's target (the first)", a.status, a.body, a.header.Get("X-Upstream"))
		}
		h := w.target.lastHeader()
		if v := h.Values("X-Server-Name"); len(v) != 0 {
			t.Errorf("the target got X-Server-Name %q", v)
		}
		if h.Get("X-Secret") != "" || h.Get("X-Kept") != "yes" {
			t.Errorf("the target got X-Secret %q (Connection-nominated) and X-Kept %q", h.Get("X-Secret"), h.Get("X-Kept"))
		}
	}
	testNotWithin()
	// The same on a route without the filter.
	w.do(t, "GET", "/stomp/x", "Connection", "X-Secret", "X-Secret", "hop-only")
	for _, rec := range []*recorder{w.blue, w.green} {
		if h := rec.lastHeader(); h != nil && h.Get("X-Secret") != "" {
			t.Errorf("/stomp: %s got X-Secret", rec.name)
		}
	}
}

// A client whose Host is its target's own address is routed, not refused as if the
// filter had chosen nothing.
func TestHostEqualToTargetIsRouted(t *testing.T) {
	w := startWorld(t)
	req, _ := http.NewRequest("GET", w.proxy.URL+"/sys/same", nil)
	req.Host = w.target.addr
	req.Header.Set("X-Server-Name", "web-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Upstream") != "target" {
		t.Fatalf("Host = target address: %d %q, want 200 from the target", resp.StatusCode, b)
	}
}

// A target the policy refuses gets a local reply naming the server, never the address.
func TestRefusedTargetAnswerNamesTheServer(t *testing.T) {
	w := startWorldAllow(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this machine: %v", err)
	}
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "reached") }))
	register(t, w.reg.URL(), "inside-1", ln.Addr().String())
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := w.do(t, "GET", "/sys/x", "X-Server-Name", "inside-1")
		if a.status == 403 {
			if !strings.Contains(a.body, "inside-1") || !strings.Contains(a.body, "loopback") || strings.Contains(a.body, "127.0.0.2") {
				t.Errorf("refusal body %q: want the server's name and the kind of address, not the address", a.body)
			}
			return
		}
		if a.body == "reached" {
			t.Fatalf("a loopback target outside -allow-cidr was reached")
		}
		if time.Now().After(deadline) {
			t.Fatalf("inside-1: %d %q, want 403 target_refused", a.status, a.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The dialer checks what a DNS name resolves to: "localhost" is loopback.
func TestDialerChecksResolvedAddresses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s, err := readSite(repoEnvoy(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		allow  []netip.Prefix
		refuse bool
	}{
		{nil, true},
		{[]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, true}, // wider than loopback: not named
		{[]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, false},
	} {
		p := &Proxy{site: s, cfg: Config{AllowCIDR: c.allow}}
		conn, err := p.guardedDial(time.Second)(context.Background(), "tcp", net.JoinHostPort("localhost", port))
		var refused *targetRefusedError
		switch {
		case c.refuse && !errors.As(err, &refused):
			t.Errorf("allow %v: localhost dialled (err %v), want a refusal", c.allow, err)
		case !c.refuse && err != nil:
			t.Errorf("allow %v: %v, want a connection", c.allow, err)
		}
		if conn != nil {
			conn.Close()
		}
	}
}

func TestTargetPolicy(t *testing.T) {
	s, err := readSite(repoEnvoy(t))
	if err != nil {
		t.Fatal(err)
	}
	pfx := func(list string) []netip.Prefix {
		p, err := ParseAllowCIDRs(list)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		ip, allow string
		ok        bool
	}{
		{"10.1.2.3", "", true},
		{"203.0.113.7", "", true},
		{"127.0.0.1", "", false},
		{"127.0.0.1", "0.0.0.0/0", false},
		{"127.0.0.1", "127.0.0.0/8", true},
		{"::1", "", false},
		{"::ffff:127.0.0.1", "", false},
		{"::127.0.0.1", "", false},
		{"64:ff9b::7f00:1", "", false},
		{"2002:7f00:1::", "", false},
		{"169.254.169.254", "", false},
		{"169.254.169.254", "169.254.0.0/15", false},
		{"fd00:ec2::254", "", false},
		{"100.100.100.200", "", false},
		{"0.0.0.0", "", false},
		{"224.0.0.1", "", false},
		{"10.1.2.3", "192.168.0.0/16", false},
		{"10.1.2.3", "::ffff:10.0.0.0/104", true},
	}
	for _, c := range cases {
		err := TargetPolicy{Allow: pfx(c.allow)}.check(netip.MustParseAddr(c.ip), s.dnsFilter)
		if (err == nil) != c.ok {
			t.Errorf("%s with -allow-cidr %q: err %v, want allowed=%v", c.ip, c.allow, err, c.ok)
		}
	}
	if _, err := ParseAllowCIDRs("64:ff9b::/96"); err == nil {
		t.Errorf("a NAT64 range, which could never match (its addresses are judged as IPv4), was accepted")
	}
}

// An upgraded tunnel with no byte either way for the route's idle_timeout (2 s here)
// is closed; heart-beats every 500 ms keep it open past that.
func TestIdleTunnelIsClosed(t *testing.T) {
	w := startWorld(t, "# Overrides the HCM's 300 s; STOMP heart-beats must stay well below it.\n                  idle_timeout: 3600s",
		"idle_timeout: 2s")
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(w.proxy.URL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	conn.SetDeadline(start.Add(20 * time.Second))
	io.WriteString(conn, "GET /stomp/ws HTTP/1.1\r\nHost: proxy\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	// Traffic keeps it open past the idle timeout...
	for i := 0; i < 6; i++ {
		time.Sleep(500 * time.Millisecond)
		io.WriteString(conn, "hb")
		buf := make([]byte, 2)
		if _, err := io.ReadFull(br, buf); err != nil {
			t.Fatalf("heart-beat %d after %v: %v", i, time.Since(start), err)
		}
	}
	// ...silence closes it.
	quiet := time.Now()
	if _, err := io.Copy(io.Discard, br); isTimeout(err) {
		t.Fatalf("the silent tunnel was still open after 20 s")
	}
	if took := time.Since(quiet); took > 8*time.Second {
		t.Errorf("the silent tunnel closed after %v, want about 2 s", took)
	}
}

// A route without a timeout (/stomp: timeout 0s) still does not wait for ever for an
// answer: the idle timeout ends the wait with 504.
func TestUnansweredRequestEndsAtTheIdleTimeout(t *testing.T) {
	w := startWorld(t, "# Overrides the HCM's 300 s; STOMP heart-beats must stay well below it.\n                  idle_timeout: 3600s",
		"idle_timeout: 1s")
	start := time.Now()
	a := w.do(t, "GET", "/stomp/hang")
	if took := time.Since(start); a.status != 504 || took > 5*time.Second {
		t.Fatalf("an upstream that never answers: %d %q after %v, want 504 after about 1 s", a.status, a.body, took)
	}
	if strings.Contains(a.body, "127.0.0.1") {
		t.Errorf("the 504 shows an address: %q", a.body)
	}
}
