//go:build !wasm

package main

import (
	"crypto/rand"
	"encoding/binary"

	"switchyard/internal/abi"
)

// Native stand-ins for abi_wasm.go so that the package builds and vets natively; the
// ABI glue itself is tested in the wasmhost (filter/inhost), the decisions natively
// in filter/routing and filter/polling.

func sendLocalResponse(status uint32, details, body, headers string) abi.Status { return abi.StatusOK }
func incrementMetric(id uint32, offset int64) abi.Status                        { return abi.StatusOK }
func defineMetric(typ abi.MetricType, name string) (uint32, abi.Status)         { return 0, abi.StatusOK }
func replaceRequestHeader(key, value string) abi.Status                         { return abi.StatusOK }
func removeRequestHeader(key string) abi.Status                                 { return abi.StatusOK }
func resetArena()                                                               {}
func requestHeaderPairs() (string, abi.Status)                                  { return "", abi.StatusNotFound }
func responseHeader(key string) (string, abi.Status)                            { return "", abi.StatusNotFound }
func property(path string) (string, abi.Status)                                 { return "", abi.StatusNotFound }
func getSharedData(key string, inArena bool) (string, uint32, abi.Status) {
	return "", 0, abi.StatusNotFound
}
func setSharedData(key, value string, cas uint32) abi.Status { return abi.StatusUnimplemented }
func hostNow() int64                                         { return 0 }
func recordMetric(id uint32, value uint64)                   {}
func callStatus() string                                     { return "" }

func randomBytes8() (uint64, bool) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[:]), true
}
