package wasmhost

import "github.com/tetratelabs/wazero/api"

// The host's own wasi_snapshot_preview1 (also linked as wasi_unstable), reproducing
// cpp-host's table instead of wazero's full WASI: wazero's would let a guest sleep,
// read files and see the process environment, none of which Envoy allows. The table,
// per profile, is docs/proxy-wasm-host.md, WASI; the functions are in wasi_*.go by
// group, as wazero lays out its own.

// WASI errnos the host returns.
const (
	errnoSuccess = 0
	errnoBadf    = 8
	errnoNotdir  = 20
	errnoInval   = 28
	errnoNoent   = 44
	errnoNosys   = 52
	errnoNotsup  = 58
)

// wasiStub is a stub of the Current profile's WASI set that answers fd 1/2 with SUCCESS when okForStdio,
// and everything else with errno.
func wasiStub(errno uint64, okForStdio bool) func(vm *VM, s []uint64) {
	return func(vm *VM, s []uint64) {
		if fd := uint32(s[0]); okForStdio && (fd == 1 || fd == 2) {
			s[0] = errnoSuccess
			return
		}
		s[0] = errno
	}
}

// wasiConst is a function that always answers errno.
func wasiConst(errno uint64) func(vm *VM, s []uint64) {
	return func(vm *VM, s []uint64) { s[0] = errno }
}

// stubCurrent is a file or socket stub that only the Current profile links (Legacy
// refuses a module importing it), allowed during _initialize, returning an errno
// from fn.
func stubCurrent(name string, params []api.ValueType, fn func(vm *VM, s []uint64)) *hostFunc {
	return &hostFunc{module: moduleWASI, name: name, params: params, results: r32,
		link: linkedCurrent, allowed: inInitCurrent, fn: fn}
}
