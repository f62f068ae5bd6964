// Command noalloc exports neither malloc nor proxy_on_memory_allocate: Envoy refuses
// it ("Wasm module is missing malloc function").
package main

func main() {}

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

//go:wasmexport proxy_on_tick
func onTick(root uint32) {}
