package wasmhost

import (
	"testing"
	"time"
)

// clock_time_get: realtime from the Host's clock, monotonic from real time, others
// NOTSUP; clock_res_get: 1 ns.
func TestWASIClocks(t *testing.T) {
	start := time.Unix(1_600_000_000, 0)
	_, vm, out := clockProbe(t, start)
	if e := hostcall(t, vm, nil, wasi, "clock_time_get", 0, 0, out); e != errnoSuccess || readU64(t, vm, out) != uint64(start.UnixNano()) {
		t.Errorf("realtime = %d, %d; want the manual clock's %d", e, readU64(t, vm, out), start.UnixNano())
	}
	hostcall(t, vm, nil, wasi, "clock_time_get", 1, 0, out)
	first := readU64(t, vm, out)
	time.Sleep(2 * time.Millisecond)
	hostcall(t, vm, nil, wasi, "clock_time_get", 1, 0, out)
	if second := readU64(t, vm, out); second <= first {
		t.Errorf("monotonic did not move with real time: %d then %d", first, second)
	}
	cases := []struct {
		name string
		fn   string
		args []uint64
		want uint32
	}{
		{"time of clock 2", "clock_time_get", []uint64{2, 0, out}, errnoNotsup},
		{"time outside memory", "clock_time_get", []uint64{0, 0, outside}, errnoInval},
		{"resolution", "clock_res_get", []uint64{1, out}, errnoSuccess},
		{"resolution of clock 3", "clock_res_get", []uint64{3, out}, errnoNotsup},
	}
	for _, tc := range cases {
		if got := hostcall(t, vm, nil, wasi, tc.fn, tc.args...); got != tc.want {
			t.Errorf("%s = %d, want %d", tc.name, got, tc.want)
		}
	}
	hostcall(t, vm, nil, wasi, "clock_res_get", 0, out)
	if r := readU64(t, vm, out); r != 1 {
		t.Errorf("resolution = %d ns, want 1", r)
	}
}

// Under a ManualClock the monotonic clock moves with Advance and ignores StepWall; the
// realtime clock and proxy_get_current_time_nanoseconds follow StepWall.
func TestWASIMonotonicIgnoresWallSteps(t *testing.T) {
	start := time.Unix(1_600_000_000, 0)
	clock, vm, out := clockProbe(t, start)
	read := func(id uint64) uint64 {
		t.Helper()
		if e := hostcall(t, vm, nil, wasi, "clock_time_get", id, 0, out); e != errnoSuccess {
			t.Fatalf("clock_time_get(%d) = errno %d", id, e)
		}
		return readU64(t, vm, out)
	}
	mono0 := read(1)
	clock.StepWall(-time.Hour)
	if got, want := read(0), uint64(start.Add(-time.Hour).UnixNano()); got != want {
		t.Errorf("realtime after StepWall(-1h) = %d, want %d", got, want)
	}
	hostcall(t, vm, nil, "env", "proxy_get_current_time_nanoseconds", out)
	if got := readU64(t, vm, out); got != uint64(start.Add(-time.Hour).UnixNano()) {
		t.Errorf("proxy_get_current_time_nanoseconds after StepWall(-1h) = %d, want an hour before the start", got)
	}
	mono1 := read(1)
	if mono1 < mono0 {
		t.Errorf("monotonic went back with the wall clock: %d then %d", mono0, mono1)
	}
	clock.Advance(10 * time.Second)
	mono2 := read(1)
	if mono2-mono1 < uint64(10*time.Second) {
		t.Errorf("monotonic moved %d ns over Advance(10 s), want at least 10 s", mono2-mono1)
	}
	if got, want := read(0), uint64(start.Add(-time.Hour+10*time.Second).UnixNano()); got != want {
		t.Errorf("realtime after Advance(10 s) = %d, want %d", got, want)
	}
}

// A timer armed before a wall-clock step back still fires after its delay.
func TestManualClockTimersIgnoreWallSteps(t *testing.T) {
	clock := NewManualClock(time.Unix(1_600_000_000, 0))
	fired := false
	clock.AfterFunc(time.Second, func() { fired = true })
	clock.StepWall(-time.Hour)
	clock.Advance(time.Second)
	if !fired {
		t.Error("a 1 s timer did not fire 1 s after the wall clock stepped back an hour")
	}
}
