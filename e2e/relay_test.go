package e2e

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// wireRelay is a TCP relay to a registrar that counts the bytes each way: what
// crosses the loopback wire, HTTP headers included. With a delay, it holds each read
// toward the proxy that long before passing it on, as a slow network would.
type wireRelay struct {
	ln                net.Listener
	delay             time.Duration
	toProxy, toTarget atomic.Int64
	mu                sync.Mutex
	conns             []net.Conn
}

func newWireRelay(t testing.TB, target string, delay time.Duration) *wireRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &wireRelay{ln: ln, delay: delay}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, in, out)
			r.mu.Unlock()
			go relayCopy(out, in, &r.toTarget, 0)
			go relayCopy(in, out, &r.toProxy, r.delay)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, c := range r.conns {
			c.Close()
		}
	})
	return r
}

func (r *wireRelay) addr() string { return r.ln.Addr().String() }

// relayCopy copies src to dst, counting each read before it is passed on (so a
// change seen through the proxy has all its bytes counted) and held delay, and closes
// both at the end.
func relayCopy(dst, src net.Conn, n *atomic.Int64, delay time.Duration) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 64<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			n.Add(int64(k))
			time.Sleep(delay)
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
