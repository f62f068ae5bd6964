package wasmhost

// Environment and arguments: docs/proxy-wasm-host.md, WASI. A plugin sees only the
// environment its configuration gives it (Envoy's vm_config.environment_variables,
// PluginConfig.Env here), never the proxy's, and no arguments.

var wasiEnvironImports = []*hostFunc{environSizesGet, environGet, argsSizesGet, argsGet}

// environSizesGet is wasi environ_sizes_get: the count of PluginConfig.Env entries and
// the bytes environ_get needs for them ("KEY=value\x00" each).
//
//	environ_sizes_get(ret_count, ret_buf_size) -> errno
//
// Errnos:
//   - SUCCESS: both were written.
//   - INVAL: an out-parameter outside guest memory.
//
// Linked everywhere; allowed during _initialize.
var environSizesGet = &hostFunc{
	module: moduleWASI, name: "environ_sizes_get",
	params: ps(2), results: r32, link: linkedEverywhere, allowed: inInit,
	fn: func(vm *VM, s []uint64) {
		size := 0
		for _, kv := range vm.environ {
			size += len(kv) + 1
		}
		if !vm.putU32(uint32(s[0]), uint32(len(vm.environ))) || !vm.putU32(uint32(s[1]), uint32(size)) {
			s[0] = errnoInval
			return
		}
		s[0] = errnoSuccess
	},
}

// environGet is wasi environ_get: the PluginConfig.Env entries, sorted by key, as
// NUL-terminated "KEY=value" strings with a pointer to each.
//
//	environ_get(ret_pointers, ret_buf) -> errno
//
// Errnos:
//   - SUCCESS: written.
//   - INVAL: the buffers outside guest memory.
//
// Linked everywhere; allowed during _initialize.
var environGet = &hostFunc{
	module: moduleWASI, name: "environ_get",
	params: ps(2), results: r32, link: linkedEverywhere, allowed: inInit,
	fn: func(vm *VM, s []uint64) {
		ptrs, buf := uint32(s[0]), uint32(s[1])
		for i, kv := range vm.environ {
			if !vm.putU32(ptrs+uint32(4*i), buf) || !vm.mem.Write(buf, append([]byte(kv), 0)) {
				s[0] = errnoInval
				return
			}
			buf += uint32(len(kv) + 1)
		}
		s[0] = errnoSuccess
	},
}

// argsSizesGet is wasi args_sizes_get: no arguments.
//
//	args_sizes_get(ret_count, ret_buf_size) -> errno
//
// Errnos:
//   - SUCCESS: (0, 0) was written.
//   - INVAL: an out-parameter outside guest memory.
//
// Linked everywhere; allowed during _initialize.
var argsSizesGet = &hostFunc{
	module: moduleWASI, name: "args_sizes_get",
	params: ps(2), results: r32, link: linkedEverywhere, allowed: inInit,
	fn: func(vm *VM, s []uint64) {
		if !vm.putU32(uint32(s[0]), 0) || !vm.putU32(uint32(s[1]), 0) {
			s[0] = errnoInval
			return
		}
		s[0] = errnoSuccess
	},
}

// argsGet is wasi args_get: no arguments, nothing written.
//
//	args_get(ret_pointers, ret_buf) -> errno
//
// Errnos: SUCCESS, always. Linked everywhere; allowed during _initialize.
var argsGet = &hostFunc{
	module: moduleWASI, name: "args_get",
	params: ps(2), results: r32, link: linkedEverywhere, allowed: inInit,
	fn: wasiConst(errnoSuccess),
}
