// Command loglevel020 imports proxy_get_log_level but declares ABI 0.2.0: Envoy links
// that import only for 0_2_1 modules, so loading fails.
package main

func main() {}

//go:wasmimport env proxy_get_log_level
func proxyGetLogLevel(level *uint32) uint32

//go:wasmexport proxy_abi_version_0_2_0
func abiVersion() {}

var keep []byte

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte {
	keep = make([]byte, size)
	return &keep[0]
}

var level uint32

//go:wasmexport proxy_on_tick
func onTick(root uint32) { proxyGetLogLevel(&level) }
