package wasmhost

import "switchyard/internal/abi"

// Logging: docs/proxy-wasm-host.md, Logs. The lines land in the Host's log (log.go).

var logImports = []*hostFunc{proxyLog, proxyGetLogLevel}

// proxyLog is env.proxy_log: one log line at a proxy-wasm level, which Envoy prints
// as "wasm log <plugin_name> <root_id>: <msg>".
//
//	proxy_log(level, msg_ptr, msg_size) -> status
//
// Statuses:
//   - Ok: the line was logged (or dropped for being below the host's level).
//   - BadArgument: level above 5 (critical).
//   - InvalidMemoryAccess: msg outside guest memory.
//
// Linked everywhere; allowed in every window (_initialize and the allocator too).
var proxyLog = &hostFunc{
	module: moduleEnv, name: "proxy_log",
	params: ps(3), results: r32, link: linkedEverywhere, allowed: inInitAndAlloc,
	fn: func(vm *VM, s []uint64) {
		level := abi.LogLevel(s[0])
		if level > abi.LogCritical {
			s[0] = uint64(abi.StatusBadArgument)
			return
		}
		msg, ok := vm.mem.Read(uint32(s[1]), uint32(s[2]))
		if !ok {
			s[0] = uint64(abi.StatusInvalidMemoryAccess)
			return
		}
		vm.host.log(vm, LogLevel(level), string(msg))
		s[0] = uint64(abi.StatusOK)
	},
}

// proxyGetLogLevel is env.proxy_get_log_level: the level below which Envoy drops the
// plugin's lines (Host.LogLevel), so that a guest can skip building them.
//
//	proxy_get_log_level(ret_level_ptr) -> status
//
// Statuses:
//   - Ok: the level (0..5) was written.
//   - InvalidMemoryAccess: ret_level_ptr outside guest memory.
//
// Linked only for modules exporting proxy_abi_version_0_2_1 (Envoy refuses a 0_2_0
// module importing it); callbacks only.
var proxyGetLogLevel = &hostFunc{
	module: moduleEnv, name: "proxy_get_log_level",
	params: ps(1), results: r32, link: linkedABI021, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) {
		s[0] = uint64(status(vm.putU32(uint32(s[0]), uint32(vm.host.LogLevel()))))
	},
}
