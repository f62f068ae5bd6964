package wasmhost

import "time"

// Clocks: docs/proxy-wasm-host.md, WASI. The realtime clock follows the Host's Clock
// (a ManualClock in tests); the monotonic clock always follows real time, since the Go
// runtime busy-waits on it and a frozen one would hang the guest, plus, under a
// ManualClock, what Advance moved (never StepWall), so that a guest timing by it sees
// driven time pass.

var wasiClockImports = []*hostFunc{clockTimeGet, clockResGet}

const (
	clockRealtime  = 0
	clockMonotonic = 1
)

// processStart is the origin of the monotonic clock.
var processStart = time.Now()

// monotonicSince is the monotonic clock: time since the host process started (plus
// Advance's moves under a ManualClock). Every VM of the process reads the same one.
func monotonicSince(c Clock) time.Duration {
	if m, ok := c.(*ManualClock); ok {
		return m.monotonic()
	}
	return time.Since(processStart)
}

// clockTimeGet is wasi clock_time_get: realtime (0) in ns since the Unix epoch from the
// Host's Clock, monotonic (1) in ns since the host process started (monotonicSince);
// the precision is ignored.
//
//	clock_time_get(id, precision i64, ret_timestamp) -> errno
//
// Errnos:
//   - SUCCESS: the timestamp (u64) was written.
//   - NOTSUP: any other clock.
//   - INVAL: ret_timestamp outside guest memory.
//
// Linked everywhere; allowed in every window.
var clockTimeGet = &hostFunc{
	module: moduleWASI, name: "clock_time_get",
	params: types(i32, i64, i32), results: r32, link: linkedEverywhere, allowed: inInitAndAlloc,
	fn: func(vm *VM, s []uint64) {
		var t uint64
		switch uint32(s[0]) {
		case clockRealtime:
			t = uint64(vm.host.clock.Now().UnixNano())
		case clockMonotonic:
			t = uint64(monotonicSince(vm.host.clock))
		default:
			s[0] = errnoNotsup
			return
		}
		if !vm.mem.WriteUint64Le(uint32(s[2]), t) {
			s[0] = errnoInval
			return
		}
		s[0] = errnoSuccess
	},
}

// clockResGet is wasi clock_res_get: 1 ns for both clocks (Current profile only).
//
//	clock_res_get(id, ret_resolution) -> errno
//
// Errnos:
//   - SUCCESS: the resolution (u64) was written.
//   - NOTSUP: any clock but 0 and 1.
//   - INVAL: ret_resolution outside guest memory.
//
// Linked in the Current profile only; allowed during _initialize.
var clockResGet = stubCurrent("clock_res_get", ps(2), func(vm *VM, s []uint64) {
	if id := uint32(s[0]); id != clockRealtime && id != clockMonotonic {
		s[0] = errnoNotsup
		return
	}
	if !vm.mem.WriteUint64Le(uint32(s[1]), 1) {
		s[0] = errnoInval
		return
	}
	s[0] = errnoSuccess
})
