package inhost

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/filter/polling"
	"switchyard/internal/contract"
	"switchyard/wasmhost"
)

// Router-only mode: no sync singleton; one router VM per vm_id holds the poll lease
// (filter/polling/lease.go) and polls. Each router VM here has its own proxy_id, so the
// registrar's polls tell which VM sent them.

// leaseBound is the documented bound for a dead holder's replacement: the lease plus
// one tick (the takeover is a cas write over the expired key).
const leaseBound = contract.LeaseSeconds*time.Second + 100*time.Millisecond

func routerCfg(i int) []byte { return filterConfig(`"proxy_id": "r` + strconv.Itoa(i) + `"`) }

func startRouters(e *fEnv, n int, env map[string]string) []*wasmhost.VM {
	vms := make([]*wasmhost.VM, n)
	for i := range vms {
		vms[i] = e.vmWith(wasmhost.PluginConfig{Name: "switchyard", RootID: contract.RootRouter, VMID: "switchyard", Configuration: routerCfg(i), Env: env})
	}
	return vms
}

// lease reads the lease key as the host holds it.
func (e *fEnv) lease() polling.LeaseValue {
	v, _, ok := e.h.SharedData("switchyard", polling.LeaseKey)
	if !ok {
		return polling.LeaseValue{}
	}
	l, _ := polling.ParseLease(v)
	return l
}

// advanceUntil moves the driven clock in ticks until cond holds, at most max; the
// real registrar answers in real time, so each step leaves it a moment.
func advanceUntil(t *testing.T, clk *wasmhost.ManualClock, max time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	var moved time.Duration
	realDeadline := time.Now().Add(max + 20*time.Second)
	for !cond() {
		if moved >= max || time.Now().After(realDeadline) {
			t.Fatalf("%s: not within %v of host time", what, max)
		}
		clk.Advance(100 * time.Millisecond)
		moved += 100 * time.Millisecond
		time.Sleep(2 * time.Millisecond)
	}
	return moved
}

// routes reports whether name routes to authority through vm now.
func routes(t *testing.T, vm *wasmhost.VM, name, authority string) bool {
	r := fRequest(t, vm, "/sys/x", name)
	return r.local == nil && r.header(":authority") == authority
}

func onlyPoller(t *testing.T, e *fEnv, want string) {
	t.Helper()
	by, most := e.reg.pollers()
	if most > 1 {
		t.Errorf("%d polls were served at once, want at most 1 (polls by proxy: %v)", most, by)
	}
	for p := range by {
		if want != "" && p != want || len(by) > 1 {
			t.Errorf("polls by proxy %v, want only %q", by, want)
			break
		}
	}
}

func TestRouterOnlyOnePollerAtATime(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, map[string]string{"web-1": "10.0.0.1:81"})
	vms := startRouters(e, 3, nil)
	for _, vm := range vms {
		waitRouted(t, vm, "web-1", "10.0.0.1:81", syncWithin)
	}
	l := e.lease()
	if l.Role != contract.RootRouter || l.Holder == "" {
		t.Fatalf("lease %+v, want a router's", l)
	}
	e.reg.pollers() // from here on: one poller
	for i := 0; i < 5; i++ {
		target := "10.0.1." + strconv.Itoa(i) + ":80"
		e.reg.put("web-1", target)
		for _, vm := range vms {
			waitRouted(t, vm, "web-1", target, syncWithin)
		}
	}
	time.Sleep(2500 * time.Millisecond) // two long-polls of wait_seconds 1 answered 304
	by, most := e.reg.pollers()
	if len(by) != 1 || most != 1 {
		t.Fatalf("polls by proxy %v, at most %d at once; want one proxy, one at a time", by, most)
	}
	for p, n := range by {
		if n < 5 {
			t.Errorf("the poller %s sent %d polls, want at least one per change", p, n)
		}
	}
	if e.h.Metrics()[contract.MetricSyncSuccess] < 6 {
		t.Errorf("%s = %d", contract.MetricSyncSuccess, e.h.Metrics()[contract.MetricSyncSuccess])
	}
}

// holderVM finds which VM polls: the proxy= of the polls since the last pollers().
func holderVM(t *testing.T, e *fEnv, vms []*wasmhost.VM, clk *wasmhost.ManualClock) (int, map[string]int) {
	t.Helper()
	var by map[string]int
	advanceUntil(t, clk, 2*time.Second, "a poll", func() bool {
		time.Sleep(20 * time.Millisecond)
		by, _ = e.reg.pollers()
		return len(by) > 0
	})
	if len(by) != 1 {
		t.Fatalf("polls by proxy %v, want one poller", by)
	}
	for p := range by {
		i, err := strconv.Atoi(p[1:])
		if err != nil || i >= len(vms) {
			t.Fatalf("poll from proxy %q", p)
		}
		return i, by
	}
	return -1, nil
}

func TestRouterOnlyHolderKilledAnotherTakesOver(t *testing.T) {
	for _, p := range []wasmhost.Profile{wasmhost.Current, wasmhost.Legacy} {
		t.Run(p.String(), func(t *testing.T) {
			clk := wasmhost.NewManualClock(time.Now())
			e := newFEnv(t, wasmhost.Options{Clock: clk, Profile: p}, map[string]string{"web-1": "10.0.0.1:81"})
			vms := startRouters(e, 3, map[string]string{"GOGC": "10"})
			advanceUntil(t, clk, 5*time.Second, "the first table", func() bool { return routes(t, vms[2], "web-1", "10.0.0.1:81") })
			holder, _ := holderVM(t, e, vms, clk)
			vms[holder].Kill() // it dies: no proxy_on_done releases the lease
			e.reg.pollers()
			e.reg.put("web-1", "10.0.0.2:82")
			rest := slices.Delete(slices.Clone(vms), holder, holder+1)
			took := advanceUntil(t, clk, leaseBound+time.Second, "another router took the lease", func() bool {
				return len(e.reg.byProxyNow()) > 0 // a poll since the kill: another VM polls
			})
			t.Logf("r%d killed; another router polled after %v of host time (bound %v)", holder, took, leaseBound)
			if took > leaseBound+200*time.Millisecond || took < contract.LeaseSeconds*time.Second/2 {
				t.Errorf("takeover after %v of host time, documented bound %v (and not before half the lease, which the dead holder renewed)", took, leaseBound)
			}
			for _, vm := range rest {
				advanceUntil(t, clk, 3*time.Second, "the change after the takeover", func() bool { return routes(t, vm, "web-1", "10.0.0.2:82") })
			}
			newHolder, _ := holderVM(t, e, vms, clk)
			if newHolder == holder {
				t.Fatalf("polls from the killed VM r%d", holder)
			}
			e.reg.put("web-1", "10.0.0.3:83")
			for _, vm := range rest {
				advanceUntil(t, clk, 3*time.Second, "a later change", func() bool { return routes(t, vm, "web-1", "10.0.0.3:83") })
			}
			onlyPoller(t, e, "r"+strconv.Itoa(newHolder))
			if n := e.h.PollOneoffCalls(); n != 0 {
				t.Fatalf("poll_oneoff called %d times", n)
			}
			for _, vm := range rest {
				if err := vm.Err(); err != nil {
					t.Fatalf("a VM died: %v", err)
				}
			}
		})
	}
}

// TestLeaseReleasedWhenPluginDone: a VM that is done (proxy_on_done: a plugin update
// or removal) releases the poll lease, so another router polls at its next tick
// rather than when the lease would have expired: for a router holder, and for the
// sync.
func TestLeaseReleasedWhenPluginDone(t *testing.T) {
	const bound = 300 * time.Millisecond // two ticks and the tick the release lands in
	t.Run("router", func(t *testing.T) {
		clk := wasmhost.NewManualClock(time.Now())
		e := newFEnv(t, wasmhost.Options{Clock: clk}, map[string]string{"web-1": "10.0.0.1:81"})
		vms := startRouters(e, 2, nil)
		advanceUntil(t, clk, 5*time.Second, "the first table", func() bool { return routes(t, vms[1], "web-1", "10.0.0.1:81") })
		holder, _ := holderVM(t, e, vms, clk)
		if err := vms[holder].Close(); err != nil {
			t.Fatal(err)
		}
		e.reg.pollers()
		other := vms[1-holder]
		took := advanceUntil(t, clk, leaseBound+time.Second, "the other router polls", func() bool { return len(e.reg.byProxyNow()) > 0 })
		if took > bound {
			t.Errorf("the other router polled %v of host time after the holder was done, want within %v (not the lease's %v)", took, bound, leaseBound)
		}
		e.reg.put("web-1", "10.0.0.2:82")
		advanceUntil(t, clk, 3*time.Second, "a change after the handover", func() bool { return routes(t, other, "web-1", "10.0.0.2:82") })
	})
	t.Run("sync", func(t *testing.T) {
		clk := wasmhost.NewManualClock(time.Now())
		e := newFEnv(t, wasmhost.Options{Clock: clk}, map[string]string{"web-1": "10.0.0.1:81"})
		syncVM := e.vm(contract.RootSync, filterConfig(`"proxy_id": "sync"`))
		vms := startRouters(e, 1, nil)
		advanceUntil(t, clk, 5*time.Second, "the first table", func() bool { return routes(t, vms[0], "web-1", "10.0.0.1:81") })
		if err := syncVM.Close(); err != nil {
			t.Fatal(err)
		}
		e.reg.pollers()
		took := advanceUntil(t, clk, leaseBound+time.Second, "a router polls", func() bool {
			return e.lease().Role == contract.RootRouter && len(e.reg.byProxyNow()) > 0
		})
		if took > bound {
			t.Errorf("a router polled %v of host time after the sync was done, want within %v", took, bound)
		}
	})
}

// TestRouterOnlyReloadColdStarts: a reload replaces every VM; the vm_id's shared data
// goes with the last, so the new routers answer 503 routes_not_loaded until one of
// them takes the lease and loads the table.
func TestRouterOnlyReloadColdStarts(t *testing.T) {
	for _, p := range []wasmhost.Profile{wasmhost.Current, wasmhost.Legacy} {
		t.Run(p.String(), func(t *testing.T) {
			clk := wasmhost.NewManualClock(time.Now())
			e := newFEnv(t, wasmhost.Options{Clock: clk, Profile: p}, map[string]string{"web-1": "10.0.0.1:81"})
			vms := startRouters(e, 2, nil)
			advanceUntil(t, clk, 5*time.Second, "the first table", func() bool { return routes(t, vms[1], "web-1", "10.0.0.1:81") })
			for _, vm := range vms {
				vm.Close()
			}
			if _, _, ok := e.h.SharedData("switchyard", contract.RevisionKey); ok {
				t.Fatal("shared data outlived the vm_id's last VM")
			}
			e.reg.put("web-2", "10.0.0.2:82")
			vms = startRouters(e, 2, nil)
			for _, vm := range vms {
				if got := fRequest(t, vm, "/sys/x", "web-1"); got.status() != 503 || got.errorCode() != contract.CodeRoutesNotLoaded {
					t.Fatalf("after the reload: %d %q, want 503 routes_not_loaded", got.status(), got.errorCode())
				}
			}
			for _, vm := range vms {
				advanceUntil(t, clk, 5*time.Second, "the table after the reload", func() bool {
					return routes(t, vm, "web-1", "10.0.0.1:81") && routes(t, vm, "web-2", "10.0.0.2:82")
				})
			}
			onlyPoller(t, e, "")
			if n := e.h.PollOneoffCalls(); n != 0 {
				t.Fatalf("poll_oneoff called %d times", n)
			}
		})
	}
}

// TestRouterOnlySyncPresentRoutersNeverPoll: beside a live sync no router polls; when
// the sync's VM dies and is not replaced, a router takes the lease.
func TestRouterOnlySyncPresentRoutersNeverPoll(t *testing.T) {
	clk := wasmhost.NewManualClock(time.Now())
	e := newFEnv(t, wasmhost.Options{Clock: clk}, map[string]string{"web-1": "10.0.0.1:81"})
	syncVM := e.vm(contract.RootSync, filterConfig(`"proxy_id": "sync"`))
	vms := startRouters(e, 2, nil)
	advanceUntil(t, clk, 5*time.Second, "the first table", func() bool { return routes(t, vms[0], "web-1", "10.0.0.1:81") })
	for i := 0; i < 3; i++ {
		target := "10.0.2." + strconv.Itoa(i) + ":80"
		e.reg.put("web-1", target)
		for _, vm := range vms {
			advanceUntil(t, clk, 3*time.Second, "a change", func() bool { return routes(t, vm, "web-1", target) })
		}
	}
	// Longer than a lease: the sync renews, no router takes it.
	advance(clk, 2*leaseBound)
	onlyPoller(t, e, "sync")
	if l := e.lease(); l.Role != contract.RootSync {
		t.Fatalf("lease %+v beside a live sync", l)
	}
	// The sync's VM dies and is not replaced: a router takes over within the bound.
	syncVM.Kill()
	e.reg.put("web-1", "10.0.3.1:80")
	took := advanceUntil(t, clk, leaseBound+time.Second, "a router took the lease from the dead sync", func() bool {
		return e.lease().Role == contract.RootRouter && len(e.reg.byProxyNow()) > 0
	})
	t.Logf("the sync killed; a router polled after %v of host time (bound %v)", took, leaseBound)
	if took > leaseBound+200*time.Millisecond || took < contract.LeaseSeconds*time.Second/2 {
		t.Errorf("takeover after %v of host time, documented bound %v", took, leaseBound)
	}
	for _, vm := range vms {
		advanceUntil(t, clk, 3*time.Second, "the change after the takeover", func() bool { return routes(t, vm, "web-1", "10.0.3.1:80") })
	}
	by, _ := e.reg.pollers()
	if _, ok := by["sync"]; ok || len(by) != 1 {
		t.Errorf("polls after the sync died: %v, want one router's", by)
	}
}

// advanceRealPace moves the driven clock by d at the pace of real time, for the
// phases where the registrar's long-polls (held in real time) must be answered.
func advanceRealPace(clk *wasmhost.ManualClock, d time.Duration) {
	for moved := time.Duration(0); moved < d; moved += 100 * time.Millisecond {
		clk.Advance(100 * time.Millisecond)
		time.Sleep(100 * time.Millisecond)
	}
}

// advance moves the driven clock by d in ticks, leaving the registrar a moment each.
func advance(clk *wasmhost.ManualClock, d time.Duration) {
	for moved := time.Duration(0); moved < d; moved += 100 * time.Millisecond {
		clk.Advance(100 * time.Millisecond)
		time.Sleep(2 * time.Millisecond)
	}
}

// TestRouterOnlyMillionRequestsAcrossHandover: 1,000,000 requests through one router
// VM while the poll lease passes from another router, killed at request 300,000, to
// this one; the driven clock moves 100 ms every 1,000 requests (100 s of host time in
// all, the handover taking about 10 s of it). No request for a registered name fails,
// and a change made after the kill reaches the routers through the new poller.
func TestRouterOnlyMillionRequestsAcrossHandover(t *testing.T) {
	const requests = 1_000_000
	table := make(map[string]string, 1000)
	for i := 0; i < 1000; i++ {
		table["n"+strconv.Itoa(i)] = "10.0." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + ":80"
	}
	clk := wasmhost.NewManualClock(time.Now())
	e := newFEnv(t, wasmhost.Options{Clock: clk, Profile: wasmhost.Legacy}, table)
	gc := map[string]string{"GOGC": "10"}
	holder := e.vmWith(wasmhost.PluginConfig{Name: "switchyard", RootID: contract.RootRouter, VMID: "switchyard", Configuration: routerCfg(0), Env: gc})
	advanceUntil(t, clk, 5*time.Second, "the first table", func() bool { return routes(t, holder, "n7", "10.0.0.7:80") })
	r := e.vmWith(wasmhost.PluginConfig{Name: "switchyard", RootID: contract.RootRouter, VMID: "switchyard", Configuration: routerCfg(1), Env: gc})
	advance(clk, time.Second)
	if by, _ := e.reg.pollers(); len(by) != 1 || by["r0"] == 0 {
		t.Fatalf("polls by proxy %v before the handover, want r0's only", by)
	}

	headers := func(name string) wasmhost.Headers {
		return wasmhost.Headers{{":method", "GET"}, {":path", "/sys/x"}, {":authority", "p"}, {"x-server-name", name}}
	}
	known, unknown := headers("n7"), headers("nobody")
	start := time.Now()
	for i := 0; i < requests; i++ {
		if i == 300_000 {
			holder.Kill()
			e.reg.put("n500", "10.9.9.9:80")
		}
		if i%1000 == 0 {
			clk.Advance(100 * time.Millisecond)
			if time.Since(start) > 5*time.Minute {
				t.Fatalf("only %d requests in %v", i, time.Since(start))
			}
		}
		h := known
		if i%10 == 9 {
			h = unknown
		}
		s, err := r.NewStream(wasmhost.StreamAttributes{})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if _, err := s.RequestHeaders(h, true); err != nil {
			t.Fatalf("request %d: the router VM failed: %v", i, err)
		}
		lr := s.LocalResponse()
		if i%10 == 9 && (lr == nil || lr.Status != 404) {
			t.Fatalf("request %d for an unknown name: local response %+v", i, lr)
		}
		if i%10 != 9 {
			if lr != nil {
				t.Fatalf("request %d for a registered name failed: %d %s", i, lr.Status, lr.Body)
			}
			if a, _ := s.RequestHeaderMap().Get(":authority"); a != "10.0.0.7:80" {
				t.Fatalf("request %d routed to %q", i, a)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatalf("request %d: closing the stream: %v", i, err)
		}
	}
	t.Logf("%d requests in %v (%v each)", requests, time.Since(start).Round(time.Millisecond), time.Since(start)/requests)
	if e.reg.byProxyNow()["r1"] == 0 {
		t.Fatal("the lease did not pass to the surviving router during the requests")
	}
	advanceUntil(t, clk, 3*time.Second, "the change made after the kill", func() bool { return routes(t, r, "n500", "10.9.9.9:80") })
	if l := e.lease(); l.Role != contract.RootRouter {
		t.Fatalf("lease %+v after the handover", l)
	}
	by, _ := e.reg.pollers()
	if by["r1"] == 0 {
		t.Fatalf("polls by proxy %v: the surviving router never polled", by)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("the router VM died: %v", err)
	}
	if n := e.h.PollOneoffCalls(); n != 0 {
		t.Fatalf("poll_oneoff called %d times, want 0", n)
	}
}

// TestTableAgeStaleAndFresh: the registrar stops answering (its polls hang): the
// routers' gauge switchyard.table.age_seconds grows, the proxy logs once (not once per
// VM or per tick) when it passes stale_after_seconds, and once when polls succeed
// again. Run with and without a sync: the age is the poller's, whoever polls.
func TestTableAgeStaleAndFresh(t *testing.T) {
	for _, withSync := range []bool{true, false} {
		name := "router-only"
		if withSync {
			name = "with-sync"
		}
		t.Run(name, func(t *testing.T) {
			clk := wasmhost.NewManualClock(time.Now())
			e := newFEnv(t, wasmhost.Options{Clock: clk}, map[string]string{"web-1": "10.0.0.1:81"})
			if withSync {
				e.vm(contract.RootSync, filterConfig(`"stale_after_seconds": 5`))
			}
			vms := make([]*wasmhost.VM, 2)
			for i := range vms {
				vms[i] = e.vm(contract.RootRouter, filterConfig(`"stale_after_seconds": 5, "proxy_id": "r`+strconv.Itoa(i)+`"`))
			}
			advanceUntil(t, clk, 5*time.Second, "the first table", func() bool { return routes(t, vms[1], "web-1", "10.0.0.1:81") })
			advanceRealPace(clk, 3*time.Second) // long-polls of wait_seconds 1 answered 304 keep the table fresh
			if age := e.metric(contract.MetricTableAge); age > 2 {
				t.Fatalf("age %d s while the registrar answers", age)
			}
			if n := e.countLogs("route table is stale"); n != 0 {
				t.Fatalf("%d stale lines while the registrar answers", n)
			}
			e.reg.setMode("hang")
			advanceUntil(t, clk, 10*time.Second, "the stale line", func() bool { return e.countLogs("route table is stale") > 0 })
			advance(clk, 5*time.Second)
			if age := e.metric(contract.MetricTableAge); age < 9 {
				t.Fatalf("age %d s after more than 10 s without an answer", age)
			}
			if n := e.countLogs("route table is stale"); n != 1 {
				t.Fatalf("%d stale lines, want 1 for the proxy\n%s", n, e.logText())
			}
			if !routes(t, vms[0], "web-1", "10.0.0.1:81") {
				t.Fatal("the stale table no longer routes")
			}
			e.reg.setMode("")
			// The retry waits out its backoff (host time), then long-polls for 1 s of real time.
			for moved := time.Duration(0); e.countLogs("route table is fresh again") == 0; moved += 100 * time.Millisecond {
				if moved > 20*time.Second {
					t.Fatalf("no fresh line within 20 s after the registrar answers again\n%s", e.logText())
				}
				advanceRealPace(clk, 100*time.Millisecond)
			}
			advanceRealPace(clk, 2*time.Second)
			if age := e.metric(contract.MetricTableAge); age > 2 {
				t.Fatalf("age %d s after recovery", age)
			}
			if n := e.countLogs("route table is fresh again"); n != 1 {
				t.Fatalf("%d fresh lines, want 1", n)
			}
		})
	}
}

// TestRunsWithoutMetrics: on a host that keeps no metrics (define_metric answers
// Unimplemented) the router and the sync start, route and poll, and each VM says once
// that it runs without metrics.
func TestRunsWithoutMetrics(t *testing.T) {
	clk := wasmhost.NewManualClock(time.Now())
	e := newFEnv(t, wasmhost.Options{Clock: clk, NoMetrics: true}, map[string]string{"web-1": "10.0.0.1:81"})
	e.vm(contract.RootSync, filterConfig(`"proxy_id": "sync"`))
	vms := startRouters(e, 1, nil)
	advanceUntil(t, clk, 5*time.Second, "the first table", func() bool { return routes(t, vms[0], "web-1", "10.0.0.1:81") })
	if got := fRequest(t, vms[0], "/sys/x", "nobody"); got.status() != 404 {
		t.Errorf("an unknown name: %d, want 404", got.status())
	}
	n := 0
	for _, l := range e.h.Logs() {
		if strings.Contains(l.Message, "running without switchyard's metrics") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d lines say the VM runs without metrics, want one per VM (2):\n%s", n, e.logText())
	}
	if err := vms[0].Err(); err != nil {
		t.Fatalf("the router died: %v", err)
	}
}
