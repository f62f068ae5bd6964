package inhost

import (
	"testing"
	"time"

	"switchyard/internal/contract"
	"switchyard/wasmhost"
)

// Target sets through the real filter.wasm in the host, fed by the real registrar
// (sync protocol version 3): weights, draining, panic, and the passive health check
// reading what the host hands it on the response path.

// upstreamFailed is what Envoy hands the filter after a connect failure to addr
// (docs/proxy-wasm-host.md, "What the filter is handed when the upstream fails").
func upstreamFailed(addr string) wasmhost.Upstream {
	return wasmhost.Upstream{Flags: 0x20, CodeDetails: "upstream_reset_before_response_started{remote_connection_failure}", Address: addr}
}

// answer drives one request of name through vm to its end: the response is a 200 from
// the target, or, when fail says so for the target the filter chose, the 503 Envoy
// answers after a connect failure. It gives the :authority the filter chose ("" when
// it answered itself) and its local reply.
func answer(t testing.TB, vm *wasmhost.VM, name string, fail func(authority string) bool) (string, *wasmhost.LocalResponse) {
	t.Helper()
	s, err := vm.NewStream(wasmhost.StreamAttributes{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.RequestHeaders(benchRequest(name), true); err != nil {
		t.Fatal(err)
	}
	if lr := s.LocalResponse(); lr != nil {
		return "", lr
	}
	auth, _ := s.RequestHeaderMap().Get(":authority")
	resp := benchResponse
	if fail != nil && fail(auth) {
		s.SetUpstream(upstreamFailed(auth))
		resp = wasmhost.Headers{{":status", "503"}, {"content-type", "text/plain"}}
	} else {
		s.SetUpstream(wasmhost.Upstream{CodeDetails: "via_upstream", Address: auth})
	}
	if _, err := s.ResponseHeaders(resp, true); err != nil {
		t.Fatal(err)
	}
	return auth, nil
}

func TestFilterWeightedTargets(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, map[string]string{
		"shop":     "*127.0.0.1:9101/90,127.0.0.1:9102/10",
		"blue":     "*127.0.0.1:9201/1/d,127.0.0.1:9202/0,127.0.0.1:9203/3",
		"draining": "*127.0.0.1:9301/5/d,127.0.0.1:9302/0",
		"single":   "127.0.0.1:9401",
	})
	routers := startSynced(t, e, 2, filterConfig(""))
	count := map[string]int{}
	const n = 10000
	for i := 0; i < n; i++ {
		auth, lr := answer(t, routers[i%2], "shop", nil)
		if lr != nil {
			t.Fatalf("request %d answered %d %s", i, lr.Status, lr.Body)
		}
		count[auth]++
	}
	for addr, want := range map[string]int{"127.0.0.1:9101": 9000, "127.0.0.1:9102": 1000} {
		if d := count[addr] - want; d < -n/50 || d > n/50 {
			t.Errorf("%s got %d of %d requests, want %d ± 2 %%", addr, count[addr], n, want)
		}
	}
	for i := 0; i < 10; i++ {
		if auth, _ := answer(t, routers[0], "blue", nil); auth != "127.0.0.1:9203" {
			t.Fatalf("blue routed to %q, want the one active target of weight > 0", auth)
		}
	}
	if auth, _ := answer(t, routers[1], "single", nil); auth != "127.0.0.1:9401" {
		t.Fatalf("single routed to %q", auth)
	}
	before := e.metric(contract.MetricRejectedBase + contract.CodeNoActiveTarget)
	r := fRequest(t, routers[0], "/sys/x", "draining")
	if r.status() != 503 || r.errorCode() != contract.CodeNoActiveTarget {
		t.Fatalf("all draining: %d %q, want 503 %s", r.status(), r.errorCode(), contract.CodeNoActiveTarget)
	}
	if got := e.metric(contract.MetricRejectedBase+contract.CodeNoActiveTarget) - before; got != 1 {
		t.Fatalf("%s%s counted %d", contract.MetricRejectedBase, contract.CodeNoActiveTarget, got)
	}
	if e.metric(contract.MetricRoutedPanic) != 0 || e.metric(contract.MetricEjections) != 0 {
		t.Fatalf("panic %d, ejections %d with every target healthy", e.metric(contract.MetricRoutedPanic), e.metric(contract.MetricEjections))
	}
}

// A target that fails max_fails times within fail_timeout is skipped by the VM that saw
// it at once and by the proxy's other VMs from their next tick, for fail_timeout; then
// it is tried again. When every target is skipped, requests go to them anyway (panic).
func TestFilterPassiveHealth(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, map[string]string{
		"shop": "*127.0.0.1:9101/1,127.0.0.1:9102/1",
	})
	routers := startSynced(t, e, 2, filterConfig(`"max_fails": 2, "fail_timeout": 2`))
	a, b := routers[0], routers[1]
	dead := map[string]bool{"127.0.0.1:9101": true}
	failed := 0
	fail := func(auth string) bool {
		if dead[auth] {
			failed++
			return true
		}
		return false
	}
	for i := 0; i < 20; i++ {
		answer(t, a, "shop", fail)
	}
	if failed != 2 {
		t.Fatalf("%d requests went to the dead target through one VM, want max_fails (2)", failed)
	}
	if got := e.metric(contract.MetricEjections); got != 1 {
		t.Fatalf("ejections %d, want 1", got)
	}
	// b learns on its tick (100 ms) and then sends nothing to the dead target.
	time.Sleep(300 * time.Millisecond)
	failed = 0
	for i := 0; i < 20; i++ {
		answer(t, b, "shop", fail)
	}
	if failed != 0 {
		t.Fatalf("%d requests went to the ejected target through the other VM after its tick", failed)
	}
	// Back after fail_timeout: the target gets traffic again in both VMs.
	delete(dead, "127.0.0.1:9101")
	time.Sleep(2*time.Second + 300*time.Millisecond)
	for _, vm := range routers {
		seen := map[string]int{}
		for i := 0; i < 10; i++ {
			auth, _ := answer(t, vm, "shop", fail)
			seen[auth]++
		}
		if seen["127.0.0.1:9101"] != 5 || seen["127.0.0.1:9102"] != 5 {
			t.Fatalf("after fail_timeout: %v, want 5 each", seen)
		}
	}
	// Both targets fail: both ejected, and requests are routed over them anyway.
	dead["127.0.0.1:9101"], dead["127.0.0.1:9102"] = true, true
	for i := 0; i < 8; i++ {
		answer(t, a, "shop", fail)
	}
	if got := e.metric(contract.MetricEjections); got != 3 {
		t.Fatalf("ejections %d after both failed, want 3", got)
	}
	panicked := e.metric(contract.MetricRoutedPanic)
	seen := map[string]int{}
	for i := 0; i < 4; i++ {
		auth, lr := answer(t, a, "shop", nil)
		if lr != nil {
			t.Fatalf("every target ejected: answered %d %s, want routed in panic", lr.Status, lr.Body)
		}
		seen[auth]++
	}
	if seen["127.0.0.1:9101"] != 2 || seen["127.0.0.1:9102"] != 2 {
		t.Fatalf("panic routing %v, want 2 each", seen)
	}
	if got := e.metric(contract.MetricRoutedPanic) - panicked; got != 4 {
		t.Fatalf("%s counted %d of 4", contract.MetricRoutedPanic, got)
	}
}

// max_fails 0 turns the check off: failures never eject, and a response costs no
// host call.
func TestFilterPassiveHealthOff(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, map[string]string{"shop": "*127.0.0.1:9101/1,127.0.0.1:9102/1"})
	r := startSynced(t, e, 1, filterConfig(`"max_fails": 0`))[0]
	failed := 0
	for i := 0; i < 20; i++ {
		answer(t, r, "shop", func(auth string) bool {
			if auth == "127.0.0.1:9101" {
				failed++
				return true
			}
			return false
		})
	}
	if failed != 10 || e.metric(contract.MetricEjections) != 0 {
		t.Fatalf("max_fails 0: %d failures of 20 requests, %d ejections; want 10 and 0", failed, e.metric(contract.MetricEjections))
	}
	if _, _, ok := e.h.SharedData("switchyard", contract.HealthKey); ok {
		t.Fatal("max_fails 0 wrote the health state")
	}
}

// An upstream's own 503 (no response flags) counts for nothing.
func TestFilterUpstreamsOwn503IsNoFailure(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, map[string]string{"shop": "*127.0.0.1:9101/1,127.0.0.1:9102/1"})
	r := startSynced(t, e, 1, filterConfig(""))[0]
	for i := 0; i < 10; i++ {
		s, err := r.NewStream(wasmhost.StreamAttributes{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RequestHeaders(benchRequest("shop"), true); err != nil {
			t.Fatal(err)
		}
		auth, _ := s.RequestHeaderMap().Get(":authority")
		s.SetUpstream(wasmhost.Upstream{CodeDetails: "via_upstream", Address: auth})
		if _, err := s.ResponseHeaders(wasmhost.Headers{{":status", "503"}}, true); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	if got := e.metric(contract.MetricEjections); got != 0 {
		t.Fatalf("an upstream's own 503 ejected %d targets", got)
	}
}
