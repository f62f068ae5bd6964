//go:build !wasm

package main

// Native stand-ins for abi_wasm.go so that the package builds and its pure parts test
// on the development machine; the ABI glue itself is tested in the wasmhost.

var nativeNow int64

func nowNanos() int64                                                       { return nativeNow }
func sendLocalResponse(status uint32, details, body, headers string) uint32 { return 0 }
func recordMetric(id uint32, value uint64) uint32                           { return 0 }
func incrementMetric(id uint32, offset int64) uint32                        { return 0 }
func replaceRequestHeader(key, value string) uint32                         { return 0 }
func removeRequestHeader(key string) uint32                                 { return 0 }
func sharedData(key string) (string, uint32)                                { return "", 1 }
func resetArena()                                                           {}
func requestHeaderPairs() (string, uint32)                                  { return "", 1 }
