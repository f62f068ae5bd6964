package wasmhost

import "crypto/rand"

// Randomness: docs/proxy-wasm-host.md, WASI.

var wasiRandomImports = []*hostFunc{randomGet}

// maxRandomGet is the most random_get hands out in one call, as cpp-host.
const maxRandomGet = 64 << 10

// randomGet is wasi random_get: cryptographic random bytes (Envoy uses BoringSSL's).
//
//	random_get(buf, buf_len) -> errno
//
// Errnos:
//   - SUCCESS: buf was filled.
//   - INVAL: buf_len over 64 KiB, or buf outside guest memory.
//
// Linked everywhere; allowed during _initialize (the Go runtime seeds itself there).
var randomGet = &hostFunc{
	module: moduleWASI, name: "random_get",
	params: ps(2), results: r32, link: linkedEverywhere, allowed: inInit,
	fn: func(vm *VM, s []uint64) {
		ptr, n := uint32(s[0]), uint32(s[1])
		if n > maxRandomGet {
			s[0] = errnoInval
			return
		}
		buf, ok := vm.mem.Read(ptr, n)
		if !ok {
			s[0] = errnoInval
			return
		}
		_, _ = rand.Read(buf) // crypto/rand.Read never fails (Go 1.24 and later)
		s[0] = errnoSuccess
	},
}
