package wasmhost

import (
	"time"

	"switchyard/internal/abi"
)

// Timers and time: docs/proxy-wasm-host.md, Timers and time. Both read the Host's
// Clock, so tests drive ticks with a ManualClock.

var timerImports = []*hostFunc{proxySetTickPeriodMilliseconds, proxyGetCurrentTimeNanoseconds}

// proxySetTickPeriodMilliseconds is env.proxy_set_tick_period_milliseconds: arms the
// root context's timer (one per root context, whichever context calls), which calls
// proxy_on_tick(root) every period; 0 stops it.
//
//	proxy_set_tick_period_milliseconds(period_ms) -> status
//
// Statuses: Ok, always.
//
// Linked everywhere; callbacks only (so not from a Go guest's init()).
var proxySetTickPeriodMilliseconds = &hostFunc{
	module: moduleEnv, name: "proxy_set_tick_period_milliseconds",
	params: ps(1), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) {
		vm.setTickPeriod(uint32(s[0]))
		s[0] = uint64(abi.StatusOK)
	},
}

// proxyGetCurrentTimeNanoseconds is env.proxy_get_current_time_nanoseconds: the wall
// clock (Envoy's dispatcher time), in ns since the Unix epoch.
//
//	proxy_get_current_time_nanoseconds(ret_time_ptr) -> status
//
// Statuses:
//   - Ok: the time (u64) was written.
//   - InvalidMemoryAccess: ret_time_ptr outside guest memory.
//
// Linked everywhere; callbacks only.
var proxyGetCurrentTimeNanoseconds = &hostFunc{
	module: moduleEnv, name: "proxy_get_current_time_nanoseconds",
	params: ps(1), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) {
		s[0] = uint64(status(vm.mem.WriteUint64Le(uint32(s[0]), uint64(vm.host.clock.Now().UnixNano()))))
	},
}

// TickPeriod returns the period the root context set with
// proxy_set_tick_period_milliseconds (0: no ticks).
func (vm *VM) TickPeriod() time.Duration { return time.Duration(vm.tickPeriod.Load()) }

// setTickPeriod arms (or, with 0, stops) the root context's tick timer. Envoy keeps one
// timer per root context, whichever context asked.
func (vm *VM) setTickPeriod(ms uint32) {
	d := time.Duration(ms) * time.Millisecond
	if time.Duration(vm.tickPeriod.Load()) == d {
		return
	}
	vm.tickPeriod.Store(int64(d))
	if vm.tickStop != nil {
		vm.tickStop()
		vm.tickStop = nil
	}
	vm.tickGen++
	if d > 0 {
		vm.armTick(vm.tickGen, d)
	}
}

func (vm *VM) armTick(gen uint64, d time.Duration) {
	vm.tickStop = vm.host.clock.AfterFunc(d, func() { vm.tick(gen) })
}

// tick delivers proxy_on_tick(root) under the VM's lock and re-arms the timer, unless
// the period changed meanwhile or the VM is gone.
func (vm *VM) tick(gen uint64) {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if gen != vm.tickGen || vm.aliveErr() != nil {
		return
	}
	vm.tickStop = nil
	_, _, err := vm.call(exTick, nil, vm.rootID, uint64(vm.rootID))
	vm.finishCallback()
	if err != nil || gen != vm.tickGen {
		return
	}
	vm.armTick(gen, time.Duration(vm.tickPeriod.Load()))
}
