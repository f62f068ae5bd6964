package wasmhost

import (
	"testing"
	"time"

	"switchyard/internal/abi"
	"switchyard/internal/contract"
)

// Ticks run per root context on the driven clock: each VM ticks on its own, and a
// period of 0 stops only that VM's ticks.
func TestTicksPerRootContext(t *testing.T) {
	clock := NewManualClock(time.Unix(1_700_000_000, 0))
	h := newHost(t, Options{Clock: clock})
	a := startProbe(t, h, PluginConfig{RootID: contract.RootSync, Configuration: []byte("tick=1000")})
	b := startProbe(t, h, PluginConfig{RootID: contract.RootRouter, Configuration: []byte("tick=500")})
	if a.TickPeriod() != time.Second || b.TickPeriod() != 500*time.Millisecond {
		t.Fatalf("TickPeriod = %v, %v", a.TickPeriod(), b.TickPeriod())
	}
	count := func(root string) int { return len(logLines(h, "tick 1 root_id="+root+" ")) }

	clock.Advance(3 * time.Second)
	if count(contract.RootSync) != 3 || count(contract.RootRouter) != 6 {
		t.Fatalf("after 3s: sync %d ticks (want 3), router %d (want 6)", count(contract.RootSync), count(contract.RootRouter))
	}
	mustRequest(t, b, "/tick?ms=0") // from a stream context: applies to its root
	clock.Advance(2 * time.Second)
	if count(contract.RootSync) != 5 || count(contract.RootRouter) != 6 {
		t.Errorf("after stopping router: sync %d (want 5), router %d (want 6)", count(contract.RootSync), count(contract.RootRouter))
	}
	if b.TickPeriod() != 0 {
		t.Errorf("router TickPeriod = %v after period 0", b.TickPeriod())
	}
}

// proxy_get_current_time_nanoseconds reads the Host's clock.
func TestCurrentTime(t *testing.T) {
	start := time.Unix(1_700_000_000, 123)
	clock, vm, out := clockProbe(t, start)
	clock.Advance(time.Second)
	if st := statusOf(hostcall(t, vm, nil, "env", "proxy_get_current_time_nanoseconds", out)); st != abi.StatusOK {
		t.Fatal(st)
	}
	if got, want := readU64(t, vm, out), uint64(start.Add(time.Second).UnixNano()); got != want {
		t.Errorf("time = %d, want %d", got, want)
	}
	if st := statusOf(hostcall(t, vm, nil, "env", "proxy_get_current_time_nanoseconds", outside)); st != abi.StatusInvalidMemoryAccess {
		t.Errorf("outside memory: %v", st)
	}
}
