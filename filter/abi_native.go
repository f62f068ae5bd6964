//go:build !wasm

package main

import "switchyard/internal/abi"

// Native stand-ins for abi_wasm.go so that the package builds and its native tests
// run on the development machine; the ABI glue itself is tested in the wasmhost
// (filter/inhost).

func sendLocalResponse(status uint32, details, body, headers string) abi.Status { return abi.StatusOK }
func incrementMetric(id uint32, offset int64) abi.Status                        { return abi.StatusOK }
func replaceRequestHeader(key, value string) abi.Status                         { return abi.StatusOK }
func removeRequestHeader(key string) abi.Status                                 { return abi.StatusOK }
func sharedData(key string) (string, abi.Status)                                { return "", abi.StatusNotFound }
func resetArena()                                                               {}
func requestHeaderPairs() (string, abi.Status)                                  { return "", abi.StatusNotFound }
