// Command badimport imports a WASI function no Envoy links
// (wasi_snapshot_preview1.xyz): loading it must fail and name the import.
package main

func main() {}

//go:wasmimport wasi_snapshot_preview1 xyz
func xyz() uint32

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

var keep []byte

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte {
	keep = make([]byte, size)
	return &keep[0]
}

//go:wasmexport proxy_on_tick
func onTick(root uint32) { xyz() }
