//go:build !wasm

package main

import "switchyard/internal/abi"

// Native stand-ins for abi_sync_wasm.go so that the package builds on the development
// machine; the sync's logic is tested natively in filter/syncing, this glue in the
// wasmhost.

func syncNow() int64                             { return 0 }
func syncRecordMetric(id uint32, value uint64)   {}
func callStatus() string                         { return "" }
func setSharedData(key, value string) abi.Status { return abi.StatusUnimplemented }
