// Command wasi533 imports wasi_snapshot_preview1.fd_filestat_get, which only the
// Current profile links (wasmhost.Current): it loads there, the Legacy one (Envoy
// 1.33–1.37) refuses it.
package main

import "unsafe"

func main() {}

//go:wasmimport wasi_snapshot_preview1 fd_filestat_get
func fdFilestatGet(fd uint32, buf unsafe.Pointer) uint32

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

var keep []byte

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte {
	keep = make([]byte, size)
	return &keep[0]
}

var stat [64]byte

//go:wasmexport proxy_on_tick
func onTick(root uint32) { fdFilestatGet(3, unsafe.Pointer(&stat)) }
