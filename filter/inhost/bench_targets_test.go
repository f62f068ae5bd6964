package inhost

import (
	"strconv"
	"testing"
	"time"

	"switchyard/internal/contract"
	"switchyard/wasmhost"
)

// BenchmarkTargets measures what target sets and the passive health check cost per
// request, each against its reference in the same run (compare, bench_filter_test.go):
//
//   - targets=4: the router's cost for names of four weighted targets against names of
//     one target (the plain form, every name today), passive health check off on both
//     sides so that only the routing differs; target: ratio-to-targets=1 ≤ 1.05.
//
//   - health=on: one-target names with the passive health check on (the default,
//     max_fails 1) against the same names with it off (max_fails 0: the filter as it
//     was before target sets); target: ratio-to-health=off ≤ 1.10. A plain target is
//     routed to whatever its health, so the check costs it nothing.
//
//   - health=on/targets=4: four-target names, check on against off: the one response
//     header read (:status) per request the check costs where it matters.
//
//     go test -run '^$' -bench '^BenchmarkTargets$' -benchtime 200000x ./filter/inhost/
func BenchmarkTargets(b *testing.B) {
	const names = 10
	routes := map[string]string{}
	for i := 0; i < names; i++ {
		routes["one-"+strconv.Itoa(i)] = benchTarget(i)
		routes["four-"+strconv.Itoa(i)] = "*" + benchTarget(i) + ":9101/40," + benchTarget(i) + ":9102/30," +
			benchTarget(i) + ":9103/20," + benchTarget(i) + ":9104/10"
	}
	e := newFEnv(b, wasmhost.Options{}, routes)
	syncVM := e.vm(contract.RootSync, filterConfig(""))
	on := e.vm(contract.RootRouter, filterConfig(""))
	off := e.vm(contract.RootRouter, filterConfig(`"max_fails": 0`))
	e.waitLog("sync: table at revision 1: "+strconv.Itoa(2*names)+" servers", time.Minute)
	if err := syncVM.Close(); err != nil {
		b.Fatalf("closing the sync VM: %v", err)
	}
	checkAnswer(b, on, "one-3", benchAuthority(3))
	checkAnswer(b, on, "four-3", benchTarget(3)+":9101")
	checkAnswer(b, off, "one-3", benchAuthority(3))
	checkAnswer(b, off, "four-3", benchTarget(3)+":9101")
	side := func(vm *wasmhost.VM, prefix string) *benchSide {
		return &benchSide{h: e.h, vm: vm, request: func(i int) wasmhost.Headers { return benchRequest(prefix + strconv.Itoa(i*7%names)) }}
	}
	b.Run("targets=4", func(b *testing.B) { compare(b, side(off, "four-"), side(off, "one-"), "targets=1") })
	b.Run("health=on", func(b *testing.B) { compare(b, side(on, "one-"), side(off, "one-"), "health=off") })
	b.Run("health=on/targets=4", func(b *testing.B) { compare(b, side(on, "four-"), side(off, "four-"), "health=off") })
}
