package wasmhost

import "switchyard/internal/abi"

// Contexts and the rest of env: docs/proxy-wasm-host.md, Contexts and the rest.

var contextImports = []*hostFunc{
	proxySetEffectiveContext, proxyGetStatus, proxyDone, proxyCallForeignFunction,
	envoyResolveDNS, pthreadEqual, emscriptenNotifyMemoryGrowth,
}

// proxySetEffectiveContext is env.proxy_set_effective_context: the context later
// calls of this callback act on, e.g. a stream from proxy_on_http_call_response. Every
// call into the VM starts with its own context and restores the previous one after.
//
//	proxy_set_effective_context(context_id) -> status
//
// Statuses:
//   - Ok: switched.
//   - BadArgument: neither the root context nor a live stream of this VM.
//
// Linked everywhere; callbacks only.
var proxySetEffectiveContext = &hostFunc{
	module: moduleEnv, name: "proxy_set_effective_context",
	params: ps(1), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) {
		id := uint32(s[0])
		if id == vm.rootID {
			vm.effective, vm.effStream = id, nil
			s[0] = uint64(abi.StatusOK)
			return
		}
		st, ok := vm.streams[id]
		if !ok {
			s[0] = uint64(abi.StatusBadArgument)
			return
		}
		vm.effective, vm.effStream = id, st
		s[0] = uint64(abi.StatusOK)
	},
}

// proxyGetStatus is env.proxy_get_status: the status of the http-call answer being
// delivered: (0, "") for an answer, (11 BrokenConnection, "reset") for a failed call
// (docs/proxy-wasm-host.md, HTTP calls).
//
//	proxy_get_status(ret_code_ptr, ret_message_ptr, ret_message_size) -> status
//
// Statuses:
//   - Ok: code and message were written.
//   - InvalidMemoryAccess: out-parameters outside guest memory.
//
// Linked everywhere; callbacks only.
var proxyGetStatus = &hostFunc{
	module: moduleEnv, name: "proxy_get_status",
	params: ps(3), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) {
		if !vm.putU32(uint32(s[0]), uint32(vm.statusCode)) {
			s[0] = uint64(abi.StatusInvalidMemoryAccess)
			return
		}
		s[0] = uint64(vm.copyOut([]byte(vm.statusMsg), uint32(s[1]), uint32(s[2])))
	},
}

// proxyDone is env.proxy_done: in Envoy it ends a root context whose proxy_on_done
// returned false; the host never leaves one pending, so there is none to end.
//
//	proxy_done() -> status
//
// Statuses: NotFound, always. Linked everywhere; callbacks only.
var proxyDone = &hostFunc{
	module: moduleEnv, name: "proxy_done",
	params: nil, results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) { s[0] = uint64(abi.StatusNotFound) },
}

// proxyCallForeignFunction is env.proxy_call_foreign_function: Envoy's named
// extensions. The host provides clear_route_cache, which has nothing to clear here
// (route selection is the embedder's) and returns no data.
//
//	proxy_call_foreign_function(name_ptr, name_size, args_ptr, args_size, ret_ptr, ret_size) -> status
//
// Statuses:
//   - Ok: clear_route_cache ran; (0, 0) was written.
//   - NotFound: any other name (logged at warn).
//   - InvalidMemoryAccess: name or out-parameters outside guest memory.
//
// Linked everywhere; callbacks only.
var proxyCallForeignFunction = &hostFunc{
	module: moduleEnv, name: "proxy_call_foreign_function",
	params: ps(6), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) {
		name, ok := vm.mem.Read(uint32(s[0]), uint32(s[1]))
		if !ok {
			s[0] = uint64(abi.StatusInvalidMemoryAccess)
			return
		}
		switch string(name) {
		case "clear_route_cache":
			s[0] = uint64(vm.copyOut(nil, uint32(s[4]), uint32(s[5])))
		default:
			vm.host.log(vm, Warn, "host: foreign function "+string(name)+" is not provided by the wasmhost")
			s[0] = uint64(abi.StatusNotFound)
		}
	},
}

// envoyResolveDNS is env.envoy_resolve_dns, an Envoy-only import the host links (so
// that modules using it load) but does not provide.
//
//	envoy_resolve_dns(address_ptr, address_size, ret_token_ptr) -> status
//
// Statuses: Unimplemented, always (logged at warn). Linked everywhere; callbacks only.
var envoyResolveDNS = &hostFunc{
	module: moduleEnv, name: "envoy_resolve_dns",
	params: ps(3), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) {
		vm.host.log(vm, Warn, "host: envoy_resolve_dns is not provided by the wasmhost")
		s[0] = uint64(abi.StatusUnimplemented)
	},
}

// pthreadEqual is env.pthread_equal, which cpp-host links for Emscripten modules.
//
//	pthread_equal(a, b) -> 1 when a == b, else 0
//
// Linked everywhere; callbacks only.
var pthreadEqual = &hostFunc{
	module: moduleEnv, name: "pthread_equal",
	params: ps(2), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) { s[0] = boolU64(uint32(s[0]) == uint32(s[1])) },
}

// emscriptenNotifyMemoryGrowth is env.emscripten_notify_memory_growth, which cpp-host
// links for Emscripten modules and ignores.
//
//	emscripten_notify_memory_growth(memory_index)
//
// Linked everywhere; allowed during _initialize.
var emscriptenNotifyMemoryGrowth = &hostFunc{
	module: moduleEnv, name: "emscripten_notify_memory_growth",
	params: ps(1), results: nil, link: linkedEverywhere, allowed: inInit,
	fn: func(vm *VM, s []uint64) {},
}
