package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/internal/testkit/wait"
)

// TestReliabilityFailStaticUnderLoad: with 8 clients sending requests for registered
// names through the built dev proxy, the real registrar stops for 10 s and comes
// back. No request fails during the outage, and a change made after the registrar
// is back reaches the routers within the backoff cap (30 s) plus 1 s.
func TestReliabilityFailStaticUnderLoad(t *testing.T) {
	const (
		clients  = 8
		outage   = 10 * time.Second
		maxTotal = 500_000 // a bound on the load loop, far above what the test needs
	)
	reg := startRegistrar(t)
	alpha, beta := upstream(t, "alpha"), upstream(t, "beta")
	register(t, reg.url(), "web-1", alpha)
	register(t, reg.url(), "web-2", alpha)
	px := startDevproxy(t, reg.url())
	wait.Eventually(t, propagation, func() string {
		if g := get(t, px.url()+"/sys/x", "X-Server-Name", "web-2"); !strings.HasPrefix(g.body, "alpha") {
			return fmt.Sprintf("web-2 → %d %q", g.status, g.body)
		}
		return ""
	})

	// The load: web-2 must always reach alpha; web-1 alpha, or beta once changed.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	var (
		stop     atomic.Bool
		sent     atomic.Int64
		failed   atomic.Int64
		firstBad atomic.Value // string
		seenBeta atomic.Bool
		wg       sync.WaitGroup
	)
	one := func(name string) {
		req, _ := http.NewRequest("GET", px.url()+"/sys/load", nil)
		req.Header.Set("X-Server-Name", name)
		resp, err := client.Do(req)
		var body string
		status := 0
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body, status = string(b), resp.StatusCode
		}
		ok := status == 200 && (strings.HasPrefix(body, "alpha") || name == "web-1" && strings.HasPrefix(body, "beta"))
		if name == "web-1" && strings.HasPrefix(body, "beta") {
			seenBeta.Store(true)
		}
		if !ok {
			failed.Add(1)
			firstBad.CompareAndSwap(nil, fmt.Sprintf("%s → %d %q (err %v)", name, status, body, err))
		}
	}
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load() && sent.Add(1) <= maxTotal; i++ {
				one([]string{"web-1", "web-2"}[(c+i)%2])
			}
		}()
	}
	t.Cleanup(func() { stop.Store(true); wg.Wait() })

	time.Sleep(500 * time.Millisecond) // load before the outage too
	reg.Stop()
	before := sent.Load()
	time.Sleep(outage)
	during := sent.Load() - before
	reg.Restart() // same address, same data file
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed while the registrar was down; first: %s", f, sent.Load(), firstBad.Load())
	}
	if during < 100 {
		t.Fatalf("only %d requests during the outage; the load did not run", during)
	}

	changed := time.Now()
	register(t, reg.url(), "web-1", beta)
	deadline := changed.Add(31 * time.Second) // backoff cap + 1 s
	for !seenBeta.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("the change did not reach the routers within 31 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed; first: %s", f, sent.Load(), firstBad.Load())
	}
	t.Logf("%d requests, %d during the %v outage, none failed; the change arrived after %v",
		sent.Load(), during, outage, time.Since(changed).Round(time.Millisecond))
}
