package wasmhost

// Waiting: docs/proxy-wasm-host.md, WASI. A plugin never sleeps in Envoy. The Go
// runtime calls poll_oneoff only once a Go timer was armed; after that every GC calls
// it, which is what the Legacy profile's ENOSYS turns into a crash.

var wasiPollImports = []*hostFunc{pollOneoff, schedYield}

// pollOneoff is wasi poll_oneoff. Current profile: no events, at once; the guest
// never sleeps (a Go time.Sleep then busy-waits on the clock). Legacy profile: ENOSYS, on which the Go runtime throws
// "poll_oneoff failed" and the VM dies. Host.PollOneoffCalls counts the calls.
//
//	poll_oneoff(subscriptions, events, nsubscriptions, ret_nevents) -> errno
//
// Errnos:
//   - SUCCESS (Current): 0 was written to ret_nevents.
//   - NOSYS (Legacy): always.
//   - INVAL (Current): ret_nevents outside guest memory.
//
// Linked everywhere; allowed during _initialize and in the allocator (the Go GC may
// sleep there) in the Current profile only.
var pollOneoff = &hostFunc{
	module: moduleWASI, name: "poll_oneoff",
	params: ps(4), results: r32, link: linkedEverywhere, allowed: inInitAllocCurrent,
	fn: func(vm *VM, s []uint64) {
		vm.host.pollCalls.Add(1)
		if vm.host.opts.Profile == Legacy {
			s[0] = errnoNosys
			return
		}
		if !vm.putU32(uint32(s[3]), 0) {
			s[0] = errnoInval
			return
		}
		s[0] = errnoSuccess
	},
}

// schedYield is wasi sched_yield (both profiles): there is no one to yield to.
//
//	sched_yield() -> errno
//
// Errnos: SUCCESS, always. Linked everywhere; callbacks only.
var schedYield = &hostFunc{
	module: moduleWASI, name: "sched_yield",
	params: nil, results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: wasiConst(errnoSuccess),
}
