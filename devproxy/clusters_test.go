package devproxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"switchyard/internal/testkit/wait"
)

// A replica failing its health check (/healthz not 2xx) gets no requests until it
// passes again; a replica that refuses connections is skipped after the first refusal.
func TestClusterSkipsUnhealthyEndpoints(t *testing.T) {
	var sick = make(chan bool, 1)
	sick <- true
	replica := func(name string, healthy func() bool) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/healthz" && !healthy() {
				http.Error(w, "failing", http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, name)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	isSick := func() bool { v := <-sick; sick <- v; return v }
	a := replica("a", func() bool { return !isSick() })
	b := replica("b", func() bool { return true })
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()

	specs := map[string]*clusterSpec{"registrar": {name: "registrar", connectTimeout: time.Second,
		health: &healthCheck{interval: 50 * time.Millisecond, timeout: time.Second, unhealthy: 1, healthy: 1, httpPath: "/healthz"}}}
	ct, err := newClusterTransport(specs, map[string][]string{"registrar": {dead, a, b}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ct.healthChecks(ctx, specs, slog.New(slog.NewTextHandler(io.Discard, nil)))
	get := func() string {
		req, _ := http.NewRequestWithContext(context.WithValue(context.Background(), retriesKey{}, 2), "GET", "http://registrar/x", nil)
		resp, err := ct.RoundTrip(req)
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	wait.Eventually(t, 5*time.Second, func() string {
		for i := 0; i < 6; i++ {
			if got := get(); got != "b" {
				return fmt.Sprintf("request %d went to %q while a fails its health check and the third is dead", i, got)
			}
		}
		return ""
	})
	<-sick
	sick <- false
	wait.Eventually(t, 5*time.Second, func() string {
		seen := map[string]bool{}
		for i := 0; i < 6; i++ {
			seen[get()] = true
		}
		if !seen["a"] || !seen["b"] || len(seen) != 2 {
			return fmt.Sprintf("after a recovered, requests went to %v, want a and b only", seen)
		}
		return ""
	})
}
