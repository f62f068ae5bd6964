//go:build wasm

package main

import (
	"encoding/binary"
	"unsafe"

	"switchyard/internal/abi"
)

// Host calls the sync needs that the SDK does not offer (or offers only in a form
// that loses information), against ABI 0.2.1 as Envoy links them. Out-parameters are
// package globals: the host writes into them while the call is in progress, and a
// global never moves.

//go:wasmimport env proxy_get_current_time_nanoseconds
func syncGetCurrentTimeNanoseconds(ret *uint64) uint32

//go:wasmimport env proxy_record_metric
func syncProxyRecordMetric(id uint32, value uint64) uint32

//go:wasmimport env proxy_get_status
func syncProxyGetStatus(code *uint32, retData unsafe.Pointer, retSize *uint32) uint32

//go:wasmimport env proxy_set_shared_data
func syncProxySetSharedData(key, value string, cas uint32) uint32

var (
	syncNowOut     uint64
	syncStatusCode uint32
	syncStatusData *byte
	syncStatusSize uint32
)

// syncNow is the host's clock (Envoy's dispatcher time; the wasmhost's driven clock).
// Every due time of the sync is a comparison against it, never a Go timer.
func syncNow() int64 {
	if syncGetCurrentTimeNanoseconds(&syncNowOut) != 0 {
		return 0
	}
	return int64(syncNowOut)
}

// syncRecordMetric sets a gauge (or adds to a counter) by id; the SDK can only add to
// a gauge, which is wrong after another VM has set it.
func syncRecordMetric(id uint32, value uint64) { syncProxyRecordMetric(id, value) }

// callStatus is proxy_get_status's message after a failed http call ("reset" in Envoy
// for every cause), "" when the host gives none.
func callStatus() string {
	syncStatusData, syncStatusSize = nil, 0
	if syncProxyGetStatus(&syncStatusCode, unsafe.Pointer(&syncStatusData), &syncStatusSize) != 0 || syncStatusData == nil {
		return ""
	}
	msg := string(unsafe.Slice(syncStatusData, syncStatusSize))
	syncStatusData = nil
	return msg
}

// setSharedData writes a value with cas 0 (unconditional), straight from the string:
// the SDK's SetSharedData takes a []byte.
func setSharedData(key, value string) abi.Status {
	return abi.Status(syncProxySetSharedData(key, value, 0))
}

//go:wasmimport wasi_snapshot_preview1 random_get
func wasiRandomGet(buf unsafe.Pointer, size uint32) uint32

var randomOut [8]byte

// randomBytes8 is 64 bits from WASI random_get (Envoy: BoringSSL RAND_bytes).
func randomBytes8() (uint64, bool) {
	if wasiRandomGet(unsafe.Pointer(&randomOut[0]), 8) != 0 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(randomOut[:]), true
}
