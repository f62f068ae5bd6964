package main

import (
	"encoding/binary"
	"unsafe"

	"switchyard/internal/contract"
)

// The route table in shared data, as routers read it (the whole layout, and how the
// sync keeps it, is in filter/syncing/layout.go):
//
//	switchyard/route/<name>  → the target as registered; "" = not registered.
//	switchyard/revision      → present once a table is loaded (503 before, 404 after).
const (
	routeKeyPrefix = contract.RouteKeyPrefix
	revisionKey    = contract.RevisionKey
)

// keyBuf holds the router's lookup key: built in place, so a lookup allocates
// nothing. The VM runs one call at a time, so one buffer suffices.
var keyBuf = make([]byte, 0, len(routeKeyPrefix)+128)

// routeKeyView gives the route key of name as a view into keyBuf, valid until the
// next call.
func routeKeyView(name string) string {
	keyBuf = append(append(keyBuf[:0], routeKeyPrefix...), name...)
	return unsafe.String(unsafe.SliceData(keyBuf), len(keyBuf))
}

// serializePairs encodes headers in the proxy-wasm map format: a u32 count, then a
// (u32 key length, u32 value length) per pair, then each key and value followed by
// NUL, all little-endian.
func serializePairs(pairs [][2]string) string {
	n := 4 + 8*len(pairs)
	for _, p := range pairs {
		n += len(p[0]) + len(p[1]) + 2
	}
	b := make([]byte, 4, n)
	binary.LittleEndian.PutUint32(b, uint32(len(pairs)))
	for _, p := range pairs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[0])))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[1])))
	}
	for _, p := range pairs {
		b = append(append(b, p[0]...), 0)
		b = append(append(b, p[1]...), 0)
	}
	return string(b)
}

// unsafeString views b as a string without copying; b must not change afterwards
// (the buffers the host fills for us are never reused).
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
