package apitest

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// HealthTarget is a loopback HTTP server for the registrar's active health checks:
// GET /healthz answers Status (200 until set; a 3xx redirects to /elsewhere), every
// other path 200 with its address as the body. It counts the /healthz requests per
// User-Agent (which names the registrar replica that checks) and the requests to any
// other path, and remembers when it first answered /healthz with each status.
type HealthTarget struct {
	Addr   string
	Status atomic.Int32
	Others atomic.Int64

	mu     sync.Mutex
	agents map[string]int64
	first  map[int]time.Time
}

// NewHealthTarget starts a HealthTarget on host (an IP address) at a free port,
// stopped when the test ends.
func NewHealthTarget(t testing.TB, host string) *HealthTarget {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	h := &HealthTarget{Addr: ln.Addr().String(), agents: map[string]int64{}, first: map[int]time.Time{}}
	h.Status.Store(200)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			h.Others.Add(1)
			io.WriteString(w, h.Addr)
			return
		}
		code := int(h.Status.Load())
		h.mu.Lock()
		h.agents[r.UserAgent()]++
		if _, ok := h.first[code]; !ok {
			h.first[code] = time.Now()
		}
		h.mu.Unlock()
		if code >= 300 && code < 400 {
			http.Redirect(w, r, "/elsewhere", code)
			return
		}
		w.WriteHeader(code)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return h
}

// Hits is how many /healthz requests came, in all.
func (h *HealthTarget) Hits() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n int64
	for _, c := range h.agents {
		n += c
	}
	return n
}

// FirstAnswered is when /healthz was first answered with status (zero: never).
func (h *HealthTarget) FirstAnswered(status int) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.first[status]
}

// ByAgent is how many /healthz requests came per User-Agent.
func (h *HealthTarget) ByAgent() map[string]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int64, len(h.agents))
	for a, c := range h.agents {
		out[a] = c
	}
	return out
}
