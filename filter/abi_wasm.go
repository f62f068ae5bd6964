//go:build wasm

package main

import (
	"encoding/binary"
	"unsafe"

	"switchyard/internal/abi"
)

// The module's own host calls: those the SDK does not offer (or offers only in a form
// that loses information), and the router's hot path, declared here against ABI 0.2.1
// as Envoy links them; abi_native.go holds their native stand-ins. Out-parameters are package globals: the host writes into them
// while the call is in progress, and a call may re-enter the module (malloc) and grow
// the goroutine stack, which moves it — a host holding the address of a stack
// variable would then write into the old stack. A global never moves. (The SDK's
// locals escape to the heap instead: two allocations per call.) Each wrapper gives
// the host's status as an abi.Status.

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(status uint32, details, body, headers string, grpcStatus int32) uint32

//go:wasmimport env proxy_get_header_map_pairs
func proxyGetHeaderMapPairs(mapType uint32, retData, retSize *uint32) uint32

//go:wasmimport env proxy_replace_header_map_value
func proxyReplaceHeaderMapValue(mapType uint32, key, value string) uint32

//go:wasmimport env proxy_remove_header_map_value
func proxyRemoveHeaderMapValue(mapType uint32, key string) uint32

//go:wasmimport env proxy_get_shared_data
func proxyGetSharedData(key string, retData, retSize, retCas *uint32) uint32

//go:wasmimport env proxy_set_shared_data
func proxySetSharedData(key, value string, cas uint32) uint32

//go:wasmimport env proxy_record_metric
func proxyRecordMetric(id uint32, value uint64) uint32

//go:wasmimport env proxy_get_status
func proxyGetStatus(code *uint32, retData unsafe.Pointer, retSize *uint32) uint32

//go:wasmimport wasi_snapshot_preview1 random_get
func wasiRandomGet(buf unsafe.Pointer, size uint32) uint32

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(id uint32, offset int64) uint32

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeaderMapValue(mapType uint32, key string, retData, retSize *uint32) uint32

//go:wasmimport env proxy_get_property
func proxyGetProperty(path string, retData, retSize *uint32) uint32

//go:wasmimport env proxy_define_metric
func proxyDefineMetric(typ uint32, name string, retID *uint32) uint32

var (
	outData, outSize, outCas uint32
	outStatusCode            uint32
	outStatusData            *byte
	outStatusSize            uint32
	outRandom                [8]byte
)

// sendLocalResponse answers the stream with details (Envoy's response code
// details, shown in access logs), which the SDK's SendHttpResponse leaves empty.
// headers is in the pairs format (abi.EncodePairs).
func sendLocalResponse(status uint32, details, body, headers string) abi.Status {
	return abi.Status(proxySendLocalResponse(status, details, body, headers, -1))
}

// defineMetric asks the host for the id of the metric of that type and name. Unlike
// the SDK's, it returns the host's status rather than panicking (a trap) when the host
// keeps no metrics.
func defineMetric(typ abi.MetricType, name string) (uint32, abi.Status) {
	var id uint32
	st := abi.Status(proxyDefineMetric(uint32(typ), name, &id))
	return id, st
}

// incrementMetric adds offset to a counter by id.
func incrementMetric(id uint32, offset int64) abi.Status {
	return abi.Status(proxyIncrementMetric(id, offset))
}

// requestHeaderPairs reads the whole request header map, in the pairs format, into
// the request arena: one host call (and no allocation) instead of one per header.
func requestHeaderPairs() (string, abi.Status) {
	arenaOn = true
	st := abi.Status(proxyGetHeaderMapPairs(uint32(abi.MapRequestHeaders), &outData, &outSize))
	arenaOn = false
	if st != abi.StatusOK {
		return "", st
	}
	return hostValue(), abi.StatusOK
}

// responseHeader reads one response header's value into the request arena (the
// router reads :status on the response path without allocating).
func responseHeader(key string) (string, abi.Status) {
	arenaOn = true
	st := abi.Status(proxyGetHeaderMapValue(uint32(abi.MapResponseHeaders), key, &outData, &outSize))
	arenaOn = false
	if st != abi.StatusOK {
		return "", st
	}
	return hostValue(), abi.StatusOK
}

// property reads a property (path segments separated by NUL) into the request arena.
func property(path string) (string, abi.Status) {
	arenaOn = true
	st := abi.Status(proxyGetProperty(path, &outData, &outSize))
	arenaOn = false
	if st != abi.StatusOK {
		return "", st
	}
	return hostValue(), abi.StatusOK
}

// replaceRequestHeader sets a request header (the first of its name; Envoy setCopy).
func replaceRequestHeader(key, value string) abi.Status {
	return abi.Status(proxyReplaceHeaderMapValue(uint32(abi.MapRequestHeaders), key, value))
}

// removeRequestHeader removes every request header of a name.
func removeRequestHeader(key string) abi.Status {
	return abi.Status(proxyRemoveHeaderMapValue(uint32(abi.MapRequestHeaders), key))
}

// getSharedData reads one shared-data value and its cas. With inArena (the router's
// request path) the value lands in the request arena, like requestHeaderPairs;
// otherwise in fresh heap memory the caller may keep.
func getSharedData(key string, inArena bool) (string, uint32, abi.Status) {
	arenaOn = inArena
	st := abi.Status(proxyGetSharedData(key, &outData, &outSize, &outCas))
	arenaOn = false
	if st != abi.StatusOK {
		return "", 0, st
	}
	return hostValue(), outCas, abi.StatusOK
}

// setSharedData writes a value with a cas (0: unconditional), straight from the
// string: the SDK's SetSharedData takes a []byte.
func setSharedData(key, value string, cas uint32) abi.Status {
	return abi.Status(proxySetSharedData(key, value, cas))
}

// hostNow is the host's monotonic clock, ns: WASI clock_time_get of clock 1 (in Envoy
// the dispatcher's steady clock, in the wasmhost real time plus a ManualClock's
// Advance). Every due time of the filter is a comparison against it, never a Go timer;
// the times it writes to shared data (the poll lease's expiry, the last poll) are
// compared by the other VMs of the process, which read the same clock. Not the wall
// clock (proxy_get_current_time_nanoseconds): a step of it would move every due time.
//
// It is the Go runtime's own reading of that clock (runtime.nanotime, on wasip1
// clock_time_get(1) as the host gives it, without the offset time.Now's monotonic
// reading subtracts), so the module imports nothing more than the runtime does: a
// second go:wasmimport of clock_time_get would be a duplicate import entry. Reading a
// clock arms no timer.
func hostNow() int64 { return runtimeNanotime() }

// runtimeNanotime is runtime.nanotime, which the runtime keeps linkable by name
// (runtime/time_nofake.go).
//
//go:linkname runtimeNanotime runtime.nanotime
func runtimeNanotime() int64

// recordMetric sets a gauge (or adds to a counter) by id; the SDK can only add to a
// gauge, which is wrong after another VM has set it.
func recordMetric(id uint32, value uint64) { proxyRecordMetric(id, value) }

// callStatus is proxy_get_status's message after a failed http call ("reset" in Envoy
// for every cause), "" when the host gives none.
func callStatus() string {
	outStatusData, outStatusSize = nil, 0
	if proxyGetStatus(&outStatusCode, unsafe.Pointer(&outStatusData), &outStatusSize) != 0 || outStatusData == nil {
		return ""
	}
	msg := string(unsafe.Slice(outStatusData, outStatusSize))
	outStatusData = nil
	return msg
}

// randomBytes8 is 64 bits from WASI random_get (Envoy: BoringSSL RAND_bytes).
func randomBytes8() (uint64, bool) {
	if wasiRandomGet(unsafe.Pointer(&outRandom[0]), 8) != 0 {
		return 0, false
	}
	return binary.LittleEndian.Uint64(outRandom[:]), true
}

// hostValue gives the value a host call just returned through outData/outSize. The
// host put it in the buffer malloc handed out last (lastAlloc), which is checked, so
// that a host writing elsewhere is never read through a stale view.
func hostValue() string {
	if outSize == 0 {
		return ""
	}
	if len(lastAlloc) < int(outSize) || uint32(uintptr(unsafe.Pointer(unsafe.SliceData(lastAlloc)))) != outData {
		return ""
	}
	return unsafe.String(unsafe.SliceData(lastAlloc), int(outSize))
}

// The allocator the host fills returned values into. Envoy (and the wasmhost) call
// the export "malloc" in preference to the SDK's proxy_on_memory_allocate, so this one
// serves every host call of the module. Outside the router's hot path it gives fresh
// heap memory, as the SDK's allocator does, since SDK callers keep what they get.
// Inside it (arenaOn) it hands out slices of a package-level arena that is reset at
// every request: the hot path then allocates nothing, and the Go heap, hence the VM's
// memory, does not grow with the request count.
//
// lastAlloc roots the latest buffer until the next allocation: the GC does not move
// heap objects but frees unreachable ones, so a GC between the allocation and the
// caller's read (another allocation in the same host call may trigger one) could
// otherwise free the buffer the host just wrote into.
var (
	arena     [16 << 10]byte
	arenaUsed int
	arenaOn   bool
	lastAlloc []byte
)

// resetArena frees the arena for the next request; values read into it are invalid
// from here on.
func resetArena() { arenaUsed = 0 }

//go:wasmexport malloc
func malloc(size uint32) unsafe.Pointer {
	n := int(size)
	if arenaOn && n > 0 && n <= len(arena)-arenaUsed {
		lastAlloc = arena[arenaUsed : arenaUsed+n : arenaUsed+n]
		arenaUsed += (n + 7) &^ 7
	} else {
		lastAlloc = make([]byte, max(n, 1))[:n]
	}
	return unsafe.Pointer(unsafe.SliceData(lastAlloc))
}
