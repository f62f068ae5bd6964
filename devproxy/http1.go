package devproxy

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Envoy's HTTP/1 codec refuses what net/http accepts or quietly changes, so the dev
// proxy reads each connection's bytes beside net/http (h1Conn) to do as Envoy does:
//   - Content-Length together with Transfer-Encoding is a protocol error: 400 and the
//     connection closed, so nothing pipelined behind it is served (Envoy's default,
//     allow_chunked_length false). net/http drops the Content-Length and reads the body
//     chunked, so the handler cannot see it: the scanner marks the request.
//   - Headers that have begun but are not complete after request_headers_timeout get
//     408 and the connection closed. net/http closes silently; the scanner writes the
//     408 when net/http's read times out in the middle of a request head.
//
// The scanner follows the framing of each request (head, then a Content-Length or
// chunked body) and stops at an upgrade or CONNECT, whose bytes after the head belong
// to the tunnel.

// Server is the http.Server that serves p: the Envoy config's listener settings and
// Envoy's HTTP/1 rules. Serve it on p.WrapListener(ln).
func (p *Proxy) Server() *http.Server {
	ls := p.Listener()
	return &http.Server{
		Handler:           p,
		ReadHeaderTimeout: ls.ReadHeaderTimeout,
		IdleTimeout:       ls.IdleTimeout,
		MaxHeaderBytes:    ls.MaxHeaderBytes,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if hc, ok := c.(*h1Conn); ok {
				return context.WithValue(ctx, h1Key{}, hc)
			}
			return ctx
		},
	}
}

// WrapListener gives every accepted connection the HTTP/1 scanner Server relies on.
func (p *Proxy) WrapListener(ln net.Listener) net.Listener { return &h1Listener{ln} }

type h1Listener struct{ net.Listener }

func (l *h1Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &h1Conn{Conn: c}, nil
}

type h1Key struct{}

// scanner states
const (
	inHead      = iota // request line and headers
	inBody             // a Content-Length body: left bytes to go
	inChunkSize        // a chunk-size line
	inChunkData        // chunk data: left bytes, then its CRLF
	inChunkCRLF        // the line ending a chunk's data
	inTrailers         // trailer lines up to the empty one
	passThrough        // an upgrade, a CONNECT, or bytes the scanner cannot follow
)

// maxScanLine is how much of a line the scanner keeps: enough for the header names and
// values it reads (Content-Length, Transfer-Encoding, Connection, Upgrade) and a chunk
// size. The rest of a longer line is skipped, not kept.
const maxScanLine = 512

type h1Conn struct {
	net.Conn
	mu        sync.Mutex
	state     int
	left      int64
	line      []byte // the current line, up to maxScanLine
	headBytes int    // bytes of the current head seen so far
	head      headSeen
	heads     int          // request heads completed
	refused   map[int]bool // heads with Content-Length and Transfer-Encoding
	served    int          // requests the handler has taken (takeVerdict)
	writeOnce sync.Once    // the 408 is written once
	answered  atomic.Bool  // the 408 is written: what net/http writes after it is dropped
}

// Write drops what net/http writes after the 408 (its own 400 for a head cut off in
// the middle of a line): the client has its answer and the connection is closing.
func (c *h1Conn) Write(b []byte) (int, error) {
	if c.answered.Load() {
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// headSeen is what the scanner keeps of one request head.
type headSeen struct {
	requestLine      bool
	connect          bool
	contentLength    int64 // -1: none
	badLength        bool  // a Content-Length the scanner cannot read
	chunked, hasTE   bool
	upgrade, connUpg bool
}

func (c *h1Conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	if n > 0 {
		c.scan(b[:n])
	}
	partial := c.state == inHead && c.headBytes > 0
	c.mu.Unlock()
	var ne net.Error
	if err != nil && partial && errors.As(err, &ne) && ne.Timeout() {
		// net/http's header deadline passed in the middle of a head: Envoy answers
		// 408 (request_headers_timeout) where net/http would close without a word.
		c.writeOnce.Do(func() {
			c.answered.Store(true)
			c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			body := `{"error":"` + CodeRequestHeaderTimeout + `","message":"the request headers did not arrive within request_headers_timeout"}` + "\n"
			c.Conn.Write([]byte("HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
				strconv.Itoa(len(body)) + "\r\n\r\n" + body))
		})
	}
	return n, err
}

// takeVerdict is called once per request the handler serves, in order; it says
// whether the scanner found that request's head refused.
func (c *h1Conn) takeVerdict() (refused bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	refused = c.refused[c.served]
	c.served++
	return refused
}

func (c *h1Conn) scan(b []byte) {
	for len(b) > 0 {
		switch c.state {
		case passThrough:
			return
		case inBody, inChunkData:
			k := int64(len(b))
			if k > c.left {
				k = c.left
			}
			c.left -= k
			b = b[k:]
			if c.left == 0 {
				if c.state == inBody {
					c.state = inHead
				} else {
					c.state = inChunkCRLF
				}
			}
		default:
			i := bytes.IndexByte(b, '\n')
			chunk := b
			if i >= 0 {
				chunk = b[:i]
			}
			if c.state == inHead {
				c.headBytes += len(chunk)
				if i >= 0 {
					c.headBytes++
				}
			}
			if room := maxScanLine - len(c.line); room > 0 {
				if len(chunk) > room {
					c.line = append(c.line, chunk[:room]...)
				} else {
					c.line = append(c.line, chunk...)
				}
			}
			if i < 0 {
				return
			}
			b = b[i+1:]
			line := bytes.TrimSuffix(c.line, []byte("\r"))
			c.endLine(line)
			c.line = c.line[:0]
		}
	}
}

// endLine acts on one complete line in the states that read lines.
func (c *h1Conn) endLine(line []byte) {
	switch c.state {
	case inHead:
		if !c.head.requestLine {
			if len(line) == 0 {
				c.headBytes = 0 // an empty line before a request line is skipped
				return
			}
			c.head = headSeen{requestLine: true, contentLength: -1, connect: bytes.HasPrefix(line, []byte("CONNECT "))}
			return
		}
		if len(line) > 0 {
			c.headerLine(line)
			return
		}
		c.endHead()
	case inChunkSize:
		size := line
		if i := bytes.IndexByte(size, ';'); i >= 0 {
			size = size[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		switch {
		case err != nil || n < 0:
			c.state = passThrough // net/http refuses the body; nothing more to follow
		case n == 0:
			c.state = inTrailers
		default:
			c.state, c.left = inChunkData, n
		}
	case inChunkCRLF:
		c.state = inChunkSize
	case inTrailers:
		if len(line) == 0 {
			c.state = inHead
		}
	}
}

func (c *h1Conn) headerLine(line []byte) {
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return
	}
	value = bytes.TrimSpace(value)
	switch {
	case bytes.EqualFold(name, []byte("Content-Length")):
		n, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil || n < 0 {
			// net/http refuses most such values itself and accepts a list of equal ones
			// ("5, 5"); either way the scanner cannot follow the framing for sure.
			c.head.badLength = true
		}
		c.head.contentLength = n
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		c.head.hasTE = true
		c.head.chunked = bytes.EqualFold(lastToken(value), []byte("chunked"))
	case bytes.EqualFold(name, []byte("Upgrade")):
		c.head.upgrade = true
	case bytes.EqualFold(name, []byte("Connection")):
		for _, tok := range bytes.Split(value, []byte(",")) {
			if bytes.EqualFold(bytes.TrimSpace(tok), []byte("upgrade")) {
				c.head.connUpg = true
			}
		}
	}
}

func lastToken(v []byte) []byte {
	if i := bytes.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return bytes.TrimSpace(v)
}

func (c *h1Conn) endHead() {
	h := c.head
	idx := c.heads
	c.heads++
	c.head, c.headBytes = headSeen{}, 0
	switch {
	case h.hasTE && h.contentLength >= 0:
		if c.refused == nil {
			c.refused = map[int]bool{}
		}
		c.refused[idx] = true
		c.state = passThrough // the answer closes the connection
	case h.connect || h.upgrade && h.connUpg || h.badLength:
		c.state = passThrough
	case h.hasTE && h.chunked:
		c.state = inChunkSize
	case h.hasTE:
		c.state = passThrough // net/http answers 501 and closes
	case h.contentLength > 0:
		c.state, c.left = inBody, h.contentLength
	default:
		c.state = inHead
	}
}

// codecRefusal answers a request the scanner marked, as Envoy's codec does: 400 and the
// connection closed. False when the request may go on.
func codecRefusal(w http.ResponseWriter, r *http.Request) bool {
	hc, _ := r.Context().Value(h1Key{}).(*h1Conn)
	if hc == nil || !hc.takeVerdict() {
		return false
	}
	w.Header().Set("Connection", "close")
	writeJSON(w, http.StatusBadRequest, CodeChunkedContentLength,
		"the request has both Content-Length and Transfer-Encoding; send one of them")
	return true
}
