package wasmhost

// The process: docs/proxy-wasm-host.md, WASI.

var wasiProcImports = []*hostFunc{procExit}

// procExit is wasi proc_exit: Envoy logs an error and returns; the VM is not ended
// (a guest that expected to stop then runs on, usually into a trap).
//
//	proc_exit(code)
//
// Linked everywhere; callbacks only.
var procExit = &hostFunc{
	module: moduleWASI, name: "proc_exit",
	params: ps(1), results: nil, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) {
		vm.host.log(vm, Error, "wasi proc_exit called with code "+itoa(int64(uint32(s[0]))))
	},
}
