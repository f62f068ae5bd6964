package wasmhost

import (
	"context"
	"errors"
	"strings"
	"switchyard/internal/contract"
	"testing"
	"time"
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

// The legacy profile answers poll_oneoff with ENOSYS: a guest that armed a Go timer
// crashes at its next GC, as on Envoy 1.33–1.37; the current profile survives it. A
// guest that never arms a timer calls poll_oneoff not at all, even through GCs.
func TestProfilesAndPollOneoff(t *testing.T) {
	cases := []struct {
		name     string
		profile  Profile
		path     string
		dies     bool
		minPolls int64
		maxPolls int64
	}{
		{"current, timer then GC", Current, "/timer", false, 1, 1 << 40},
		{"legacy, timer then GC", Legacy, "/timer", true, 1, 1 << 40},
		{"legacy, GC without timer", Legacy, "/gc", false, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, Options{Profile: tc.profile})
			vm := startProbe(t, h, PluginConfig{})
			_, _, err := request(t, vm, tc.path)
			if tc.dies {
				if !errors.Is(err, ErrVMDead) || !strings.Contains(vm.Err().Error(), "poll_oneoff") {
					t.Fatalf("error = %v; want the VM dead with the runtime's poll_oneoff failure", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if n := h.PollOneoffCalls(); n < tc.minPolls || n > tc.maxPolls {
				t.Errorf("PollOneoffCalls = %d, want %d..%d", n, tc.minPolls, tc.maxPolls)
			}
		})
	}
}

func TestManualClock(t *testing.T) {
	start := time.Unix(100, 0)
	c := NewManualClock(start)
	var fired []string
	c.AfterFunc(2*time.Second, func() { fired = append(fired, "b") })
	c.AfterFunc(time.Second, func() {
		fired = append(fired, "a")
		c.AfterFunc(500*time.Millisecond, func() { fired = append(fired, "a2") }) // within the window
	})
	stop := c.AfterFunc(1500*time.Millisecond, func() { fired = append(fired, "stopped") })
	c.AfterFunc(5*time.Second, func() { fired = append(fired, "late") })
	if !stop() {
		t.Error("stop of a pending timer reported false")
	}
	c.Advance(2 * time.Second)
	if strings.Join(fired, ",") != "a,a2,b" {
		t.Errorf("fired %v, want [a a2 b]", fired)
	}
	if !c.Now().Equal(start.Add(2 * time.Second)) {
		t.Errorf("Now = %v", c.Now())
	}
	if stop() {
		t.Error("stop of a removed timer reported true")
	}
}

// WaitLog honours its context.
func TestWaitLogTimesOut(t *testing.T) {
	h := newHost(t, Options{Engine: Interpreter})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.WaitLog(ctx, "never"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitLog = %v", err)
	}
}
