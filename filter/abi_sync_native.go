//go:build !wasm

package main

import (
	"crypto/rand"
	"encoding/binary"

	"switchyard/internal/abi"
)

// Native stand-ins for abi_sync_wasm.go so that the package builds on the development
// machine; the sync's logic is tested natively in filter/syncing, this glue in the
// wasmhost.

func syncNow() int64                             { return 0 }
func syncRecordMetric(id uint32, value uint64)   {}
func callStatus() string                         { return "" }
func setSharedData(key, value string) abi.Status { return abi.StatusUnimplemented }

func randomBytes8() (uint64, bool) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[:]), true
}
