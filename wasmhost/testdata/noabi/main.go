// Command noabi exports no proxy_abi_version_* marker: Envoy cannot tell its ABI and
// refuses it.
package main

func main() {}

var keep []byte

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) *byte {
	keep = make([]byte, size)
	return &keep[0]
}

//go:wasmexport proxy_on_tick
func onTick(root uint32) {}
