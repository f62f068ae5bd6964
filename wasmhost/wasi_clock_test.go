package wasmhost

import (
	"testing"
	"time"
)

// clock_time_get: realtime from the Host's clock, monotonic from real time, others
// NOTSUP; clock_res_get: 1 ns.
func TestWASIClocks(t *testing.T) {
	start := time.Unix(1_600_000_000, 0)
	h := newHost(t, Options{Clock: NewManualClock(start)})
	vm := startProbe(t, h, PluginConfig{})
	out := guestBuf(t, vm, 8)
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
