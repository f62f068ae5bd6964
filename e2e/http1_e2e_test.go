package e2e

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"

	"switchyard/devproxy"
)

// The built dev proxy keeps Envoy's HTTP/1 rules on its listener (docs/devproxy.md,
// "HTTP/1 as Envoy's defaults take it"): Content-Length with Transfer-Encoding is 400
// and the connection closed, so a request pipelined behind it never reaches a target.
func TestDevproxyRefusesContentLengthWithChunked(t *testing.T) {
	reg := startRegistrar(t)
	register(t, reg.url(), "web-1", upstream(t, "alpha"))
	px := startDevproxy(t, reg.url())
	px.waitRouted(t, "/sys/x", "web-1", 200)

	conn := px.dial(t)
	io.WriteString(conn, "POST /sys/a HTTP/1.1\r\nHost: proxy\r\nX-Server-Name: web-1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"+
		"GET /sys/smuggled HTTP/1.1\r\nHost: proxy\r\nX-Server-Name: web-1\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(body), devproxy.CodeChunkedContentLength) {
		t.Errorf("got %d %q, want 400 %s", resp.StatusCode, body, devproxy.CodeChunkedContentLength)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
		t.Errorf("after the 400: %q (%v); want the connection closed with nothing more", rest, err)
	}
}
