package wasmhost

import (
	"errors"
	"strings"
	"testing"
	"time"
)

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

// poll_oneoff answers at once: no events (Current) or ENOSYS (Legacy); sched_yield
// succeeds.
func TestWASIPollOneoffDirect(t *testing.T) {
	for _, tc := range []struct {
		profile Profile
		want    uint32
	}{{Current, errnoSuccess}, {Legacy, errnoNosys}} {
		t.Run(tc.profile.String(), func(t *testing.T) {
			h := newHost(t, Options{Profile: tc.profile})
			vm := startProbe(t, h, PluginConfig{})
			nevents := guestBuf(t, vm, 4)
			vm.mem.WriteUint32Le(uint32(nevents), 7)
			began := time.Now()
			if got := hostcall(t, vm, nil, wasi, "poll_oneoff", 0, 0, 1, nevents); got != tc.want {
				t.Fatalf("poll_oneoff = %d, want %d", got, tc.want)
			}
			if tc.profile == Current && readU32(t, vm, nevents) != 0 {
				t.Error("nevents not set to 0")
			}
			if d := time.Since(began); d > time.Second {
				t.Errorf("poll_oneoff took %v; it must never sleep", d)
			}
			if h.PollOneoffCalls() != 1 {
				t.Errorf("PollOneoffCalls = %d", h.PollOneoffCalls())
			}
			if got := hostcall(t, vm, nil, wasi, "sched_yield"); got != errnoSuccess {
				t.Errorf("sched_yield = %d", got)
			}
		})
	}
}
