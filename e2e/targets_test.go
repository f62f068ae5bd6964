package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/internal/contract"
	"switchyard/internal/testkit/envoycheck"
)

// Several targets per name through the real registrar, dev proxy and filter, the
// targets being loopback servers on several ports.

// putTargets registers name with a target set through PUT /api/servers/{host}; query
// is appended to the URL (e.g. "?allowNoActive=true").
func putTargets(t testing.TB, baseURL, name, query string, targets ...string) {
	t.Helper()
	write(t, "PUT", baseURL+"/api/servers/"+name+query, targetsBody(targets...))
}

// targetsBody is the body of a PUT /api/servers/{host} with targets (each a target()).
func targetsBody(targets ...string) string {
	return `{"serviceName":"e2e","targets":[` + strings.Join(targets, ",") + `]}`
}

func target(addr string, weight int, state string) string {
	return fmt.Sprintf(`{"address":%q,"weight":%d,"state":%q}`, addr, weight, state)
}

// killable is a loopback upstream that can be stopped abruptly and started again on
// the same port.
type killable struct {
	t    testing.TB
	addr string
	mu   sync.Mutex
	srv  *http.Server
}

func startKillable(t testing.TB, name string) *killable {
	k := &killable{t: t, addr: "127.0.0.1:0"}
	k.start(name)
	t.Cleanup(k.kill)
	return k
}

func (k *killable) start(name string) {
	k.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger a moment after a kill
		if ln, err = net.Listen("tcp", k.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		k.t.Fatalf("listening on %s: %v", k.addr, err)
	}
	k.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })}
	go srv.Serve(ln)
	k.mu.Lock()
	k.srv = srv
	k.mu.Unlock()
}

// stop shuts the server down gracefully, as a deploy stops an instance: no new
// connections, requests in flight finish; after a grace of 2 s it closes what is
// left (Go's server waits up to 5 s for a connection on which no request came).
func (k *killable) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := k.srv.Shutdown(ctx); err != nil {
			k.t.Logf("stopping %s: %v; closing the connections left", k.addr, err)
			k.srv.Close()
		}
		k.srv = nil
	}
}

// kill closes the listener and every connection at once, as a crashed process would.
func (k *killable) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.srv != nil {
		k.srv.Close()
		k.srv = nil
	}
}

func TestProxyWeightedTargets(t *testing.T) {
	reg := startRegistrar(t)
	px := startDevproxy(t, reg.url())
	a, b, c := upstream(t, "a"), upstream(t, "b"), upstream(t, "c")
	putTargets(t, reg.url(), "shop", "?wait=applied", target(a, 90, "active"), target(b, 10, "active"), target(c, 50, "draining"))
	waitBody(t, px.url(), "shop", func(body string) bool { return strings.HasPrefix(body, "a ") || strings.HasPrefix(body, "b ") })
	count := map[string]int{}
	const n = 10000
	client := &http.Client{}
	for i := 0; i < n; i++ {
		a := getWith(t, client, px.url()+"/sys/x", "X-Server-Name", "shop")
		if a.status != 200 {
			t.Fatalf("request %d: %d %s", i, a.status, a.body)
		}
		count[a.body[:1]]++
	}
	if count["c"] != 0 {
		t.Errorf("the draining target got %d requests", count["c"])
	}
	for name, want := range map[string]int{"a": 9000, "b": 1000} {
		if d := count[name] - want; d < -n/50 || d > n/50 {
			t.Errorf("%s got %d of %d requests, want %d ± 2 %%", name, count[name], n, want)
		}
	}
	// Every target draining: 503 no_active_target, once the registrar is told it means it.
	putTargets(t, reg.url(), "shop", "?wait=applied&allowNoActive=true", target(a, 90, "draining"), target(b, 0, "active"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := get(t, px.url()+"/sys/x", "X-Server-Name", "shop")
		if got.status == 503 && got.errorCode() == contract.CodeNoActiveTarget {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("all draining: %d %s, want 503 %s", got.status, got.body, contract.CodeNoActiveTarget)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A target killed abruptly costs at most max_fails failed requests per worker VM of
// the proxy (the dev proxy spreads one client's requests over its workers; Envoy
// keeps a connection on one worker), then none; once it is back, it gets traffic
// again after fail_timeout.
func TestProxyEjectsKilledTarget(t *testing.T) {
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) { ejectsKilledTarget(t, workers) })
	}
}

func ejectsKilledTarget(t *testing.T, workers int) {
	const maxFails = 1
	reg := startRegistrar(t)
	px := startDevproxy(t, reg.url(), "-workers", fmt.Sprint(workers), "-config",
		envoycheck.WriteRepoConfig(t, `"header": "x-server-name",`, `"header": "x-server-name", "max_fails": 1, "fail_timeout": 2,`))
	a := startKillable(t, "a")
	b := upstream(t, "b")
	putTargets(t, reg.url(), "shop", "?wait=applied", target(a.addr, 1, "active"), target(b, 1, "active"))
	waitBody(t, px.url(), "shop", func(body string) bool { return body == "a" })
	client := &http.Client{}
	a.kill()
	killed := time.Now()
	failed, seenB := 0, 0
	for i := 0; i < 200; i++ {
		got := getWith(t, client, px.url()+"/sys/x", "X-Server-Name", "shop")
		switch {
		case got.status == 503:
			failed++
			if i >= 50 {
				t.Fatalf("request %d failed (%s) long after the kill", i, got.body)
			}
		case got.status == 200 && strings.HasPrefix(got.body, "b "):
			seenB++
		default:
			t.Fatalf("request %d: %d %q", i, got.status, got.body)
		}
	}
	if failed == 0 || failed > maxFails*workers {
		t.Fatalf("%d requests failed after the kill, want 1 to max_fails × workers (%d)", failed, maxFails*workers)
	}
	a.start("a")
	start := time.Now()
	for {
		got := getWith(t, client, px.url()+"/sys/x", "X-Server-Name", "shop")
		if got.status == 200 && got.body == "a" {
			break
		}
		if got.status != 200 {
			t.Fatalf("after the restart: %d %q", got.status, got.body)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the restarted target got no traffic within 10 s (fail_timeout 2 s)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The first failure came after the kill, so the target is skipped until at least
	// fail_timeout after the kill.
	if back := time.Since(killed); back < 2*time.Second {
		t.Fatalf("the killed target got traffic again %v after the kill, before fail_timeout (2 s)", back)
	}
	t.Logf("%d failed requests after the kill; traffic back %v after the restart", failed, time.Since(start).Round(time.Millisecond))
}

// waitBody polls (bounded) until a request to name answers with a body ok accepts.
func waitBody(t testing.TB, proxyURL, name string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := get(t, proxyURL+"/sys/x", "X-Server-Name", name)
		if got.status == 200 && ok(got.body) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d %q", name, got.status, got.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clientLoop sends requests for one name through a proxy from several goroutines,
// each on a keep-alive client of its own, one request after another, until stop or
// until its bounds run out (count requests per client, or a deadline); it records
// every request.
type clientLoop struct {
	stopping  chan struct{}
	once      sync.Once
	done      sync.WaitGroup
	mu        sync.Mutex
	sent      []sent
	exhausted bool // a client ran out of its bounds before stop
}

// sent is one request of a clientLoop: when it was sent and what came back (a
// transport error as status 0 with the error as the body).
type sent struct {
	at     time.Time
	status int
	body   string
}

func startClientLoop(t testing.TB, proxyURL, name string, clients, count int, within time.Duration) *clientLoop {
	l := &clientLoop{stopping: make(chan struct{})}
	deadline := time.Now().Add(within)
	for range clients {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-l.stopping:
					return
				default:
				}
				if i == count || time.Now().After(deadline) {
					l.mu.Lock()
					l.exhausted = true
					l.mu.Unlock()
					return
				}
				at := time.Now()
				a, err := tryGet(c, proxyURL+"/sys/x", "X-Server-Name", name)
				if err != nil {
					a = answer{body: err.Error()}
				}
				l.mu.Lock()
				l.sent = append(l.sent, sent{at, a.status, a.body})
				l.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() { l.stop() })
	return l
}

// stop ends the loop and returns what it sent.
func (l *clientLoop) stop() []sent {
	l.once.Do(func() { close(l.stopping) })
	l.done.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent
}

// servedSince reports whether a request sent at or after since got a 200 whose body
// starts with prefix.
func (l *clientLoop) servedSince(since time.Time, prefix string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.sent {
		if !s.at.Before(since) && s.status == 200 && strings.HasPrefix(s.body, prefix) {
			return true
		}
	}
	return false
}

// finish stops the loop, fails the test when the loop ran out of its bounds before
// (so it did not cover the whole test) or any request failed, and returns what it sent.
func (l *clientLoop) finish(t testing.TB) []sent {
	t.Helper()
	got := l.stop()
	if l.exhausted {
		t.Fatalf("the client loop ran out of its bounds after %d requests, before the test's steps ended", len(got))
	}
	failed := 0
	for _, s := range got {
		if s.status != 200 {
			if failed < 5 {
				t.Errorf("request sent at %s: %d %s", s.at.Format("15:04:05.000"), s.status, s.body)
			}
			failed++
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d requests failed, want none", failed, len(got))
	}
	return got
}

// appliedNow sends a write with wait=applied and fails the test unless every proxy
// (at least one) has it when the call returns.
func appliedNow(t testing.TB, method, url, body string) {
	t.Helper()
	a := writeAndWait(t, method, url+"?wait=applied&timeout=5s", body)
	if !*a.Applied || a.AppliedBy < 1 {
		t.Fatalf("%s %s %s: applied %v by %d proxies, pending %+v", method, url, body, *a.Applied, a.AppliedBy, a.Pending)
	}
}

// A one-call blue/green switch (PUT of the whole set with wait=applied) while clients
// send requests: no request fails, and none sent after the call returns reaches blue.
// The proxy polls through a relay that holds each answer 200 ms, so the switch reaches
// it well after a plain write would have returned: only the wait keeps blue out.
func TestProxyBlueGreenSwitch(t *testing.T) {
	reg := startRegistrar(t)
	px := startDevproxy(t, "http://"+newWireRelay(t, reg.Addr(), 200*time.Millisecond).addr())
	blue, green := upstream(t, "blue"), upstream(t, "green")
	putTargets(t, reg.url(), "shop", "?wait=applied", target(blue, 1, "active"), target(green, 1, "draining"))
	waitBody(t, px.url(), "shop", func(body string) bool { return strings.HasPrefix(body, "blue ") })

	loop := startClientLoop(t, px.url(), "shop", 2, 20000, 20*time.Second)
	time.Sleep(300 * time.Millisecond)
	appliedNow(t, "PUT", reg.url()+"/api/servers/shop", targetsBody(target(blue, 1, "draining"), target(green, 1, "active")))
	switched := time.Now()
	time.Sleep(300 * time.Millisecond)
	count := map[string]int{}
	for _, s := range loop.finish(t) {
		when := "before"
		if !s.at.Before(switched) {
			when = "after"
		}
		count[when+" "+s.body[:strings.IndexByte(s.body, ' ')]]++
	}
	if count["after blue"] != 0 || count["before blue"] == 0 || count["after green"] == 0 {
		t.Fatalf("requests by when they were sent (before or after the switch returned) and who served them: %v; want blue only before", count)
	}
	t.Logf("requests: %v", count)
}

// Zero-downtime redeploy of a two-instance server while clients send requests: for
// each instance, drain it (wait=applied), wait a moment, stop it gracefully, start it again on the
// same port, make it active again (wait=applied) and wait until it serves; not one
// request fails, and none sent while an instance is drained reaches it.
func TestProxyRedeployWithoutFailures(t *testing.T) {
	reg := startRegistrar(t)
	px := startDevproxy(t, reg.url())
	instances := map[string]*killable{"a": startKillable(t, "a"), "b": startKillable(t, "b")}
	putTargets(t, reg.url(), "shop", "?wait=applied", target(instances["a"].addr, 1, "active"), target(instances["b"].addr, 1, "active"))
	waitBody(t, px.url(), "shop", func(body string) bool { return body == "a" })

	loop := startClientLoop(t, px.url(), "shop", 2, 20000, 30*time.Second)
	type window struct{ from, to time.Time }
	drained := map[string]window{}
	for _, name := range []string{"a", "b"} {
		k := instances[name]
		one := reg.url() + "/api/servers/shop/targets/" + k.addr
		appliedNow(t, "PATCH", one, `{"state":"draining"}`)
		from := time.Now()
		// Once applied, no new request goes to k, but one the proxy routed just
		// before may not have connected yet: give it a moment, as a deploy does.
		time.Sleep(250 * time.Millisecond)
		k.stop()
		time.Sleep(200 * time.Millisecond) // down a while, as a real redeploy: requests meanwhile go to the other
		k.start(name)
		to := time.Now()
		appliedNow(t, "PATCH", one, `{"state":"active"}`)
		drained[name] = window{from, to}
		back := time.Now()
		for !loop.servedSince(back, name) {
			if time.Since(back) > 5*time.Second {
				loop.finish(t)
				t.Fatalf("%s served no request within 5 s of being made active again", name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	got := loop.finish(t)
	for _, s := range got {
		if w := drained[s.body]; !s.at.Before(w.from) && s.at.Before(w.to) {
			t.Errorf("a request sent at %s reached %s, drained from %s to %s", s.at.Format("15:04:05.000"), s.body,
				w.from.Format("15:04:05.000"), w.to.Format("15:04:05.000"))
		}
	}
	t.Logf("%d requests, none failed", len(got))
}
