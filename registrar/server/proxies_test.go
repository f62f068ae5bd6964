package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable time for the registry's own reads of the time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func poll(id string, after uint64, lineage string, wait time.Duration) SyncRequest {
	return SyncRequest{Proxy: id, After: after, Lineage: lineage, Wait: wait, HasWait: true}
}

func viewOf(t *testing.T, r *proxyRegistry, id string, rev uint64, lineage string) ProxyView {
	t.Helper()
	views, _ := r.list(rev, lineage)
	for _, v := range views {
		if v.Proxy == id {
			return v
		}
	}
	t.Fatalf("proxy %q is not listed; listed: %+v", id, views)
	return ProxyView{}
}

func TestProxyStates(t *testing.T) {
	clk := newFakeClock()
	r := newProxyRegistry(0, 0, clk.now)
	r.sawRevision(5, clk.now())
	r.report(poll("edge-1", 5, "L", 30*time.Second))
	r.report(poll("edge-2", 5, "L", 30*time.Second))
	clk.advance(10 * time.Second)
	r.sawRevision(6, clk.now()) // a write: revision 6 is current from now on
	r.sawRevision(7, clk.now().Add(time.Second))
	clk.advance(4 * time.Second)
	r.report(poll("edge-1", 7, "L", 30*time.Second))

	if v := viewOf(t, r, "edge-1", 7, "L"); v.State != stateCurrent || v.RevisionsBehind != 0 || v.BehindSeconds != 0 {
		t.Errorf("edge-1 at 7 of 7: %+v, want current", v)
	}
	v := viewOf(t, r, "edge-2", 7, "L")
	if v.State != stateBehind || v.RevisionsBehind != 2 || v.BehindSeconds != 4 || v.SilentSeconds != 14 {
		t.Errorf("edge-2 at 5 of 7, silent 14 s, behind since revision 6 came 4 s ago: %+v", v)
	}
	// Gone after two poll waits and the grace: 65 s without a poll.
	clk.advance(65*time.Second - 14*time.Second)
	if v := viewOf(t, r, "edge-2", 7, "L"); v.State != stateBehind {
		t.Errorf("edge-2 silent exactly 65 s: %s, want still behind", v.State)
	}
	clk.advance(time.Millisecond)
	if v := viewOf(t, r, "edge-2", 7, "L"); v.State != stateGone {
		t.Errorf("edge-2 silent 65.001 s with wait 30 s: %s, want gone", v.State)
	}
	_, sum := r.list(7, "L")
	if sum != (ProxySummary{Proxies: 2, Current: 1, Gone: 1}) {
		t.Errorf("summary %+v", sum)
	}
}

func TestProxyLineage(t *testing.T) {
	clk := newFakeClock()
	r := newProxyRegistry(0, 0, clk.now)
	r.report(poll("fresh", 0, "", 30*time.Second)) // no table yet
	r.report(poll("old-history", 9, "L0", 30*time.Second))
	r.report(poll("empty-current", 0, "L1", 30*time.Second)) // the empty table at revision 0 of L1
	if v := viewOf(t, r, "fresh", 4, "L1"); v.State != stateBehind || v.RevisionsBehind != 4 {
		t.Errorf("a proxy without a table: %+v, want behind by the whole revision", v)
	}
	if v := viewOf(t, r, "old-history", 4, "L1"); v.State != stateBehind || v.RevisionsBehind != 4 {
		t.Errorf("a proxy of another lineage (ahead in numbers): %+v, want behind", v)
	}
	if v := viewOf(t, r, "empty-current", 0, "L1"); v.State != stateCurrent {
		t.Errorf("a proxy at revision 0 of the current lineage while the registrar is at 0: %+v, want current", v)
	}
}

// A further page carries no after: it shows the proxy alive without moving its revision.
func TestProxyPagingKeepsRevision(t *testing.T) {
	clk := newFakeClock()
	r := newProxyRegistry(0, 0, clk.now)
	r.report(poll("p", 3, "L", 30*time.Second))
	clk.advance(50 * time.Second)
	r.report(SyncRequest{Proxy: "p", Paging: true})
	clk.advance(50 * time.Second)
	v := viewOf(t, r, "p", 3, "L")
	if v.State != stateCurrent || v.Revision != 3 || v.WaitSeconds != 30 || v.SilentSeconds != 50 {
		t.Errorf("after a page request: %+v, want current at 3, wait 30, silent 50", v)
	}
}

// fullRegistry is a registry of 3 at its cap: a, b and c polled a second apart.
func fullRegistry() (*fakeClock, *proxyRegistry) {
	clk := newFakeClock()
	r := newProxyRegistry(3, 0, clk.now)
	for _, id := range []string{"a", "b", "c"} {
		r.report(poll(id, 1, "L", time.Second))
		clk.advance(time.Second)
	}
	return clk, r
}

// listedIDs are the ids of the registry's list, comma-separated.
func listedIDs(r *proxyRegistry) string {
	views, _ := r.list(1, "L")
	var ids []string
	for _, v := range views {
		ids = append(ids, v.Proxy)
	}
	return strings.Join(ids, ",")
}

func TestProxyRegistryBounds(t *testing.T) {
	t.Run("a new proxy past the cap is refused while every proxy is live", func(t *testing.T) {
		_, r := fullRegistry()
		r.report(poll("d", 1, "L", time.Second))
		if ids := listedIDs(r); ids != "a,b,c" {
			t.Errorf("listed %v, want a,b,c (d refused: they all poll)", ids)
		}
		if ev, ref, _, _ := r.counters(); ev != 0 || ref != 1 {
			t.Errorf("evictions %d refused %d, want 0 and 1", ev, ref)
		}
	})
	t.Run("a new proxy past the cap takes the slot of a gone one silent longest", func(t *testing.T) {
		clk, r := fullRegistry()
		clk.advance(10 * time.Second)
		r.report(poll("a", 1, "L", time.Second)) // a polls again: b is now the longest silent, gone
		r.report(poll("d", 1, "L", time.Second))
		if ids := listedIDs(r); ids != "a,c,d" {
			t.Errorf("listed %v, want a,c,d (b evicted)", ids)
		}
		if ev, _, _, _ := r.counters(); ev != 1 {
			t.Errorf("evictions = %d, want 1", ev)
		}
	})
	t.Run("proxies silent past the forget time are dropped", func(t *testing.T) {
		clk := newFakeClock()
		r := newProxyRegistry(0, time.Hour, clk.now)
		r.report(poll("old", 1, "L", time.Second))
		clk.advance(30 * time.Minute)
		r.report(poll("young", 1, "L", time.Second))
		clk.advance(31 * time.Minute)
		views, sum := r.list(1, "L")
		if len(views) != 1 || views[0].Proxy != "young" || views[0].State != stateGone || sum.Proxies != 1 {
			t.Errorf("after 61 min: %+v, want only young (gone)", views)
		}
	})
	t.Run("a flood of made-up ids pushes out no proxy that polls", func(t *testing.T) {
		clk := newFakeClock()
		r := newProxyRegistry(100, 0, clk.now)
		for i := range 50 {
			r.report(poll(fmt.Sprintf("real-%02d", i), 1, "L", 30*time.Second))
		}
		for i := range 12_000 {
			r.report(poll(fmt.Sprintf("fake-%d", i), 1, "L", time.Second))
			if i%1000 == 0 { // the real proxies keep polling
				clk.advance(time.Second)
				for j := range 50 {
					r.report(poll(fmt.Sprintf("real-%02d", j), 1, "L", 30*time.Second))
				}
			}
		}
		r.mu.Lock()
		n, ln := len(r.byID), r.order.Len()
		r.mu.Unlock()
		if n != 100 || ln != 100 {
			t.Errorf("after 12,000 ids the registry holds %d (list %d), want the cap 100", n, ln)
		}
		for j := range 50 {
			if v := viewOf(t, r, fmt.Sprintf("real-%02d", j), 1, "L"); v.State != stateCurrent {
				t.Errorf("real-%02d: %+v, want current", j, v)
			}
		}
		if _, ref, _, _ := r.counters(); ref == 0 {
			t.Error("no new id was refused")
		}
	})
	t.Run("a poll without proxy= is listed by the address it came from", func(t *testing.T) {
		r := newProxyRegistry(0, 0, nil)
		r.report(SyncRequest{After: 1, Lineage: "L", Remote: "10.1.2.3:5555"})
		r.report(SyncRequest{After: 1, Lineage: "L", Remote: "[::1]:6666"})
		r.report(SyncRequest{After: 1, Lineage: "L", Remote: "10.1.2.3:5556"}) // same proxy, new connection
		views, _ := r.list(1, "L")
		if len(views) != 2 || views[0].Proxy != "unnamed@10.1.2.3" || views[1].Proxy != "unnamed@::1" || views[0].State != stateCurrent {
			t.Errorf("listed %+v", views)
		}
		if _, _, _, un := r.counters(); un != 3 {
			t.Errorf("unnamed = %d, want 3", un)
		}
	})
}

func TestRecordedIdentity(t *testing.T) {
	long := strings.Repeat("a", 300)
	for _, c := range []struct{ in, want string }{
		{"sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local", "sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local"},
		{"edge-eu-1", "edge-eu-1"},
		{"eu west", "eu%20west"},
		{"<script>alert(1)</script>", "%3Cscript%3Ealert(1)%3C/script%3E"},
		{`a"b'c&d\e` + "`", "a%22b%27c%26d%5Ce%60"},
		{"100%", "100%25"},
		{"é", "%C3%A9"},
		{"line\nbreak\x00", "line%0Abreak%00"},
		{"\u202eevil", "%E2%80%AEevil"}, // right-to-left override
	} {
		got, changed := recordedIdentity(c.in)
		if got != c.want || changed != (c.in != c.want) {
			t.Errorf("recordedIdentity(%q) = %q, %v; want %q", c.in, got, changed, c.want)
		}
	}
	a, _ := recordedIdentity(long)
	b, _ := recordedIdentity(long + "b")
	if len(a) != maxIdentity || len(b) != maxIdentity || a == b || !strings.HasPrefix(a, strings.Repeat("a", 200)) || a[maxIdentity-17] != '~' {
		t.Errorf("long ids: %q and %q, want %d bytes each, distinct, ending in ~hash", a, b, maxIdentity)
	}
	// A cut never leaves half an escape.
	esc, _ := recordedIdentity(strings.Repeat("a", maxIdentity-18) + strings.Repeat(" ", 50))
	if body := esc[:strings.LastIndexByte(esc, '~')]; strings.HasSuffix(body, "%") || strings.HasSuffix(body[:len(body)-1], "%") {
		t.Errorf("cut inside an escape: %q", esc)
	}
	for _, s := range []string{a, esc} {
		for i := 0; i < len(s); i++ {
			if s[i] != '%' && !identityByteSafe(s[i]) {
				t.Errorf("recorded form %q holds %q", s, s[i])
			}
		}
	}
}

func TestHostileIdentityRecordedEscaped(t *testing.T) {
	r := newProxyRegistry(0, 0, nil)
	r.report(SyncRequest{Proxy: "<img src=x onerror=alert(1)>", Cluster: "a b", Version: "\x1b[31m", After: 1, Lineage: "L"})
	views, _ := r.list(1, "L")
	if len(views) != 1 || views[0].Proxy != "%3Cimg%20src=x%20onerror=alert(1)%3E" || views[0].Cluster != "a%20b" || views[0].Version != "%1B[31m" {
		t.Errorf("recorded %+v", views)
	}
	if _, _, esc, _ := r.counters(); esc != 1 {
		t.Errorf("escaped = %d, want 1", esc)
	}
}

func TestWaitApplied(t *testing.T) {
	t.Run("wakes on the poll that reports the revision", func(t *testing.T) {
		r := newProxyRegistry(0, 0, nil)
		r.report(poll("a", 4, "L", 30*time.Second))
		r.report(poll("b", 4, "L", 30*time.Second))
		done := make(chan Applied, 1)
		start := time.Now()
		go func() { done <- r.waitApplied(context.Background(), 5, "L", 20*time.Second) }()
		time.Sleep(50 * time.Millisecond)
		r.report(poll("a", 5, "L", 30*time.Second))
		select {
		case res := <-done:
			t.Fatalf("answered %+v with b still at 4", res)
		case <-time.After(100 * time.Millisecond):
		}
		r.report(poll("b", 6, "L", 30*time.Second))
		res := <-done
		if !res.Applied || res.Proxies != 2 || len(res.Pending) != 0 {
			t.Errorf("got %+v, want applied by 2", res)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("took %v, want it to wake on the report", took)
		}
	})
	t.Run("the timeout names the proxies that have not", func(t *testing.T) {
		r := newProxyRegistry(0, 0, nil)
		r.report(poll("ok", 5, "L", 30*time.Second))
		r.report(poll("late", 4, "L", 30*time.Second))
		r.report(poll("other", 9, "L0", 30*time.Second))
		res := r.waitApplied(context.Background(), 5, "L", 200*time.Millisecond)
		if res.Applied || res.Proxies != 3 || len(res.Pending) != 2 || res.Pending[0].Proxy != "late" || res.Pending[1].Proxy != "other" {
			t.Errorf("got %+v, want late and other pending", res)
		}
	})
	t.Run("a pending proxy that turns gone stops counting", func(t *testing.T) {
		r := newProxyRegistry(0, 0, nil)
		r.grace = 300 * time.Millisecond
		r.report(poll("frozen", 4, "L", 0))
		r.report(poll("live", 5, "L", 30*time.Second))
		start := time.Now()
		res := r.waitApplied(context.Background(), 5, "L", 20*time.Second)
		if !res.Applied || res.Proxies != 1 {
			t.Errorf("got %+v, want applied by the 1 proxy left", res)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("took %v; it should end when frozen turns gone (0.3 s)", took)
		}
	})
	t.Run("the pending list is bounded, the count is not", func(t *testing.T) {
		r := newProxyRegistry(0, 0, nil)
		for p := range 150 {
			r.report(poll(fmt.Sprintf("edge-%03d", 149-p), 4, "L", 30*time.Second))
		}
		res := r.waitApplied(context.Background(), 5, "L", 50*time.Millisecond)
		if res.Applied || res.Proxies != 150 || res.PendingCount != 150 || len(res.Pending) != maxPendingShown ||
			res.Pending[0].Proxy != "edge-000" || res.Pending[maxPendingShown-1].Proxy != "edge-099" {
			t.Errorf("got applied=%v proxies=%d pendingCount=%d, %d listed; want 150 pending, the first 100 by id listed", res.Applied, res.Proxies, res.PendingCount, len(res.Pending))
		}
	})
	t.Run("no proxies: applied at once", func(t *testing.T) {
		r := newProxyRegistry(0, 0, nil)
		if res := r.waitApplied(context.Background(), 5, "L", time.Minute); !res.Applied || res.Proxies != 0 {
			t.Errorf("got %+v", res)
		}
	})
}

// BenchmarkProxyRegistryFlood reports what the registry holds at its cap when a flood
// of ids of the largest size arrives: bytes per proxy and in all, and the cost of one
// report of a new id (refused: every entry is live).
func BenchmarkProxyRegistryFlood(b *testing.B) {
	const cap = DefaultMaxProxies
	pad := strings.Repeat("x", maxIdentity-12)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := newProxyRegistry(cap, 0, nil)
	for i := range cap {
		r.report(SyncRequest{Proxy: fmt.Sprintf("%s%012d", pad, i), Cluster: pad + "cluster-----", Version: pad + "version-----", Lineage: pad + "lineage-----", After: 1, HasWait: true, Wait: 30 * time.Second})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := float64(after.HeapAlloc - before.HeapAlloc)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.report(SyncRequest{Proxy: fmt.Sprintf("flood-%d", i), After: 1})
	}
	b.StopTimer()
	b.ReportMetric(held/cap, "bytes/proxy")
	b.ReportMetric(held/(1<<20), "MiB-at-cap")
	runtime.KeepAlive(r)
}

// BenchmarkWaitApplied is one write waiting for wait=applied on the real registrar
// while 10,000 proxies poll it over HTTP: 5,000 polls (one after the other, as
// proxies spread over time do) each bring one proxy up to the revision waited for,
// so each can change the waiter's condition. Reported: the wall time of the 5,000
// polls, and how many times the waiter looked at every proxy.
func BenchmarkWaitApplied(b *testing.B) {
	const proxies, reports = 10_000, 5_000
	for i := 0; i < b.N; i++ {
		reg := startRegistrarB(b)
		client := &http.Client{}
		register(b, reg.URL, "bench-0", "10.0.0.1", "bench")
		lineage := reg.Store.Lineage()
		pollAt := func(p int, after uint64) {
			u := fmt.Sprintf("%s/v1/routes?v=2&proxy=edge-%05d&after=%d&lineage=%s", reg.URL, p, after, lineage)
			resp, err := client.Get(u)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		for p := range proxies {
			pollAt(p, 1)
		}
		done := make(chan string, 1)
		go func() {
			resp, err := http.Post(reg.URL+"/api/servers/register?wait=applied&timeout=60s", "application/json", strings.NewReader(regBody("bench-1", "10.0.0.2", "bench")))
			if err != nil {
				done <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			done <- resp.Status + " " + string(body)
		}()
		for reg.Server.proxies.waiting() == 0 {
			time.Sleep(time.Millisecond)
		}
		start := time.Now()
		for p := range reports {
			pollAt(p, 2)
		}
		took := time.Since(start)
		for p := reports; p < proxies; p++ {
			pollAt(p, 2)
		}
		if got := <-done; !strings.HasPrefix(got, "200 ") || !strings.Contains(got, `"applied":true`) {
			b.Fatalf("the waiting write answered %s, want applied", got)
		}
		b.ReportMetric(took.Seconds(), "s-5000-reports")
		b.ReportMetric(float64(reg.Server.proxies.scans.Load()), "scans")
	}
}

// TestWaitAppliedScansRarely: reports that cannot finish the wait do not make the
// waiting write look at every proxy again. The reports are spaced (as polls are) so
// that a waiter woken by each has the time to look.
func TestWaitAppliedScansRarely(t *testing.T) {
	r := newProxyRegistry(0, 0, nil)
	const n = 100
	for p := range n {
		r.report(poll(fmt.Sprintf("edge-%03d", p), 4, "L", 30*time.Second))
	}
	done := make(chan Applied, 1)
	go func() { done <- r.waitApplied(context.Background(), 5, "L", time.Minute) }()
	for r.waiting() == 0 {
		time.Sleep(time.Millisecond)
	}
	for p := range n {
		r.report(poll(fmt.Sprintf("edge-%03d", p), 4, "L", 30*time.Second)) // still behind
		r.report(poll(fmt.Sprintf("edge-%03d", p), 5, "L", 30*time.Second))
		time.Sleep(time.Millisecond)
	}
	res := <-done
	if !res.Applied || res.Proxies != n {
		t.Fatalf("got %+v, want applied by %d", res, n)
	}
	if got := r.scans.Load(); got > 3 {
		t.Errorf("the waiter looked at every proxy %d times for %d reports; want it to count, and look again only when the count says it may be done", got, 2*n)
	}
}
