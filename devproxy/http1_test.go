package devproxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawAnswer is one response read off a raw connection.
type rawAnswer struct {
	status int
	body   string
	header http.Header
}

// rawRequests writes payload on a new connection to addr and reads responses until the
// proxy closes the connection or wait passes; closed says which.
func rawRequests(t *testing.T, addr, payload string, wait time.Duration) (answers []rawAnswer, closed bool) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(conn, payload); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return answers, !isTimeout(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers = append(answers, rawAnswer{resp.StatusCode, string(b), resp.Header})
		if err != nil {
			return answers, !isTimeout(err)
		}
	}
}

func statuses(answers []rawAnswer) []int {
	var s []int
	for _, a := range answers {
		s = append(s, a.status)
	}
	return s
}

func (w *world) addr() string { return strings.TrimPrefix(w.proxy.URL, "http://") }

// Content-Length with Transfer-Encoding is Envoy's 400 with the connection closed: a
// request smuggled behind it is never served, and the body never reaches the upstream.
func TestContentLengthWithChunkedIsRefused(t *testing.T) {
	w := startWorld(t)
	before := w.frontend.count()
	answers, closed := rawRequests(t, w.addr(),
		"POST /page HTTP/1.1\r\nHost: proxy\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"0\r\n\r\n"+
			"GET /smuggled HTTP/1.1\r\nHost: proxy\r\n\r\n", 5*time.Second)
	if len(answers) != 1 || answers[0].status != 400 || !strings.Contains(answers[0].body, CodeChunkedContentLength) {
		t.Fatalf("answers %+v, want one 400 %s", answers, CodeChunkedContentLength)
	}
	if !closed {
		t.Errorf("the connection stayed open after the 400")
	}
	if n := w.frontend.count() - before; n != 0 {
		t.Errorf("the frontend got %d requests, want none", n)
	}
	// Behind a request with a body on the same connection: the first is served, the
	// second refused.
	answers, closed = rawRequests(t, w.addr(),
		"POST /a.txt HTTP/1.1\r\nHost: proxy\r\nContent-Length: 3\r\n\r\nabc"+
			"POST /b.txt HTTP/1.1\r\nHost: proxy\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 5*time.Second)
	if len(answers) != 2 || answers[0].status != 200 || answers[1].status != 400 || !closed {
		t.Errorf("a body, then Content-Length with chunked: %+v closed=%v, want 200 then 400 and a close", answers, closed)
	}
	// Chunked alone, and two pipelined requests, are served.
	answers, _ = rawRequests(t, w.addr(),
		"POST /a.txt HTTP/1.1\r\nHost: proxy\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"+
			"GET /b.txt HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n", 5*time.Second)
	if len(answers) != 2 || answers[0].status != 200 || answers[1].body != "frontend GET /b.txt" {
		t.Errorf("chunked then pipelined GET: %+v", answers)
	}
}

// Envoy answers every HTTP/1.0 request 426 while accept_http_10 is off, Host or not.
func TestHTTP10IsUpgradeRequired(t *testing.T) {
	w := startWorld(t)
	before := w.frontend.count()
	for _, req := range []string{"GET /page HTTP/1.0\r\n\r\n", "GET /page HTTP/1.0\r\nHost: proxy\r\n\r\n"} {
		answers, _ := rawRequests(t, w.addr(), req, 5*time.Second)
		if len(answers) != 1 || answers[0].status != 426 {
			t.Errorf("%q: %+v, want 426", req, answers)
		}
	}
	if n := w.frontend.count() - before; n != 0 {
		t.Errorf("the frontend got %d HTTP/1.0 requests", n)
	}
}

// max_request_headers_kb (60 KiB) counts the request target with the headers.
func TestLongRequestTargetIsTooLarge(t *testing.T) {
	w := startWorld(t)
	long := "/" + strings.Repeat("a", 65000)
	// Pipelined behind it, a request that is not served: Envoy closes the connection
	// after a codec error.
	answers, closed := rawRequests(t, w.addr(), "GET "+long+" HTTP/1.1\r\nHost: proxy\r\n\r\nGET /b.txt HTTP/1.1\r\nHost: proxy\r\n\r\n", 5*time.Second)
	if len(answers) != 1 || answers[0].status != 431 || !closed {
		t.Errorf("a 65,000-byte target: statuses %v, closed=%v; want one 431 and a close", statuses(answers), closed)
	}
	answers, _ = rawRequests(t, w.addr(), "GET /"+strings.Repeat("a", 60000)+".txt HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n", 5*time.Second)
	if len(answers) != 1 || answers[0].status != 200 {
		t.Errorf("a 60,000-byte target: %d answers, want 200", len(answers))
	}
}

// A #fragment is refused, not forwarded as %23.
func TestFragmentIsRefused(t *testing.T) {
	w := startWorld(t)
	before := w.frontend.count()
	answers, _ := rawRequests(t, w.addr(), "GET /page.txt#frag HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n", 5*time.Second)
	if len(answers) != 1 || answers[0].status != 400 || !strings.Contains(answers[0].body, CodeFragment) {
		t.Errorf("a target with #frag: %+v, want 400 %s", answers, CodeFragment)
	}
	if n := w.frontend.count() - before; n != 0 {
		t.Errorf("the frontend got the fragment request")
	}
}

// Client-sent x-envoy-* control headers stop at the edge; the edge sets
// x-envoy-external-address itself. The client's Accept-Encoding goes on as it came:
// none added, none changed.
func TestEdgeHeadersAreSanitized(t *testing.T) {
	w := startWorld(t)
	a := w.do(t, "GET", "/page.txt",
		"X-Envoy-Retry-On", "5xx", "X-Envoy-Max-Retries", "9", "X-Envoy-Upstream-Rq-Timeout-Ms", "1",
		"X-Envoy-Internal", "true", "X-Envoy-Downstream-Service-Node", "spoofed",
		"X-Envoy-External-Address", "203.0.113.9", "X-Envoy-Force-Trace", "1", "X-Envoy-Other", "kept")
	if a.status != 200 {
		t.Fatalf("GET: %d %q", a.status, a.body)
	}
	got := w.frontend.lastHeader()
	for _, k := range []string{"X-Envoy-Retry-On", "X-Envoy-Max-Retries", "X-Envoy-Upstream-Rq-Timeout-Ms",
		"X-Envoy-Internal", "X-Envoy-Downstream-Service-Node", "X-Envoy-Force-Trace"} {
		if v := got.Get(k); v != "" {
			t.Errorf("the upstream got %s: %q", k, v)
		}
	}
	if v := got.Get("X-Envoy-External-Address"); v != "127.0.0.1" {
		t.Errorf("X-Envoy-External-Address = %q, want the peer 127.0.0.1", v)
	}
	if v := got.Get("X-Envoy-Other"); v != "kept" {
		t.Errorf("a header Envoy does not sanitize was dropped: %q", v)
	}

	answers, _ := rawRequests(t, w.addr(), "GET /page.txt HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n", 5*time.Second)
	if len(answers) != 1 || answers[0].status != 200 {
		t.Fatalf("GET without Accept-Encoding: %+v", answers)
	}
	if v, ok := w.frontend.lastHeader()["Accept-Encoding"]; ok {
		t.Errorf("the upstream got Accept-Encoding %q, which the client did not send", v)
	}
	w.do(t, "GET", "/page.txt", "Accept-Encoding", "br")
	if v := w.frontend.lastHeader().Get("Accept-Encoding"); v != "br" {
		t.Errorf("the client's Accept-Encoding arrived as %q, want br", v)
	}
}

// Headers begun but not finished within request_headers_timeout get 408 and the
// connection closed; a connection that sent nothing is closed without an answer.
func TestSlowHeadersGet408(t *testing.T) {
	w := startWorld(t, "request_headers_timeout: 10s", "request_headers_timeout: 1s")
	start := time.Now()
	answers, closed := rawRequests(t, w.addr(), "GET /page.txt HTTP/1.1\r\nHost: pro", 10*time.Second)
	if len(answers) != 1 || answers[0].status != 408 || !strings.Contains(answers[0].body, CodeRequestHeaderTimeout) || !closed {
		t.Fatalf("a stalled head: %+v closed=%v, want 408 %s and a close", answers, closed, CodeRequestHeaderTimeout)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the 408 came after %v (request_headers_timeout 1 s)", took)
	}
	// The second request of a kept-alive connection: the same.
	answers, closed = rawRequests(t, w.addr(), "GET /a.txt HTTP/1.1\r\nHost: proxy\r\n\r\nGET /b.txt HTTP/1.1\r\nHo", 10*time.Second)
	if len(answers) != 2 || answers[0].status != 200 || answers[1].status != 408 || !closed {
		t.Errorf("a stalled second head: %+v closed=%v, want 200 then 408", answers, closed)
	}
}
