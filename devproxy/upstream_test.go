package devproxy

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"switchyard/wasmhost"
)

// What each way a loopback upstream can fail is classified as: the status, and the
// response flags, code details and upstream address Envoy hands the filter. The
// errors are the real ones Go's transport gives against real sockets.
func TestClassifyRealUpstreamFailures(t *testing.T) {
	closedPort := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}
	// serve accepts one connection, reads the request head and then does what end says.
	serve := func(end func(c *net.TCPConn)) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				end(c.(*net.TCPConn))
			}
		}()
		return ln.Addr().String()
	}
	get := func(addr string, timeout time.Duration) error {
		tr := &http.Transport{DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/sys/x", nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET %s answered %d, want an error", addr, resp.StatusCode)
		}
		return err
	}
	refusedAt := closedPort()
	resetAt := serve(func(c *net.TCPConn) { c.SetLinger(0); c.Close() })
	closedAt := serve(func(c *net.TCPConn) { c.Close() })
	silentAt := serve(func(c *net.TCPConn) { time.AfterFunc(5*time.Second, func() { c.Close() }) })
	for _, c := range []struct {
		name     string
		err      error
		timedOut bool
		addr     string
		status   int
		want     wasmhost.Upstream
	}{
		{"refused", get(refusedAt, 5*time.Second), false, refusedAt, 503,
			wasmhost.Upstream{Flags: 0x20, CodeDetails: "upstream_reset_before_response_started{remote_connection_failure}", Address: refusedAt}},
		{"reset before the response", get(resetAt, 5*time.Second), false, resetAt, 503,
			wasmhost.Upstream{Flags: 0x40, CodeDetails: "upstream_reset_before_response_started{connection_termination}", Address: resetAt}},
		{"closed before the response", get(closedAt, 5*time.Second), false, closedAt, 503,
			wasmhost.Upstream{Flags: 0x40, CodeDetails: "upstream_reset_before_response_started{connection_termination}", Address: closedAt}},
		{"route timeout", get(silentAt, 200*time.Millisecond), true, silentAt, 504,
			wasmhost.Upstream{Flags: 0x4, CodeDetails: "response_timeout", Address: silentAt}},
		{"dns failure", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "web.invalid", IsNotFound: true}}, false, "web.invalid:80", 503,
			wasmhost.Upstream{Flags: 1 << 26, CodeDetails: "dns_resolution_failure"}},
		{"no endpoint", errNoEndpoint, false, "", 503, wasmhost.Upstream{Flags: 0x2, CodeDetails: "no_healthy_upstream"}},
	} {
		got := classify(c.err, c.timedOut, c.addr)
		if got.status != c.status || got.upstream != c.want {
			t.Errorf("%s (%v): %d %+v, want %d %+v", c.name, c.err, got.status, got.upstream, c.status, c.want)
		}
		if got.status == 503 && got.code != CodeUpstreamDown && got.code != CodeNoHealthyUpstream {
			t.Errorf("%s: code %q", c.name, got.code)
		}
	}
	if u := answeredUpstream("127.0.0.1:9101"); u != (wasmhost.Upstream{CodeDetails: "via_upstream", Address: "127.0.0.1:9101"}) {
		t.Errorf("an upstream's own answer: %+v", u)
	}
	if u := answeredUpstream("web.internal:80"); u.Address != "" || !strings.HasPrefix(u.CodeDetails, "via_") {
		t.Errorf("a name's own answer: %+v", u)
	}
}
