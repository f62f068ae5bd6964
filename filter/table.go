package main

import (
	"encoding/binary"
	"unsafe"
)

// The route table in proxy-wasm shared data (one store per vm_id, seen by the sync
// root and every router VM):
//
//	switchyard/route/<name>  → the target as registered ("10.1.2.3:8080", "[2001:db8::1]",
//	                           "logs.internal"); default_port is the router's to add.
//	                           An empty value means "not registered" (ABI 0.2.1 has no
//	                           delete, so a removed name is written empty).
//	switchyard/revision      → the revision of the table, in decimal. Absent until the
//	                           first table is written, which is how the router tells
//	                           "not loaded yet" (503) from "unknown name" (404).
//
// The sync writes only the names that changed, then the revision key LAST. Each value
// is written whole by one proxy_set_shared_data, so a router reads either the old or
// the new target of a name, never a mix. A router reading in the middle of a sync may
// see some names already at the new revision and others not yet; every target it can
// see was valid in one of the two snapshots.
//
// Names removed from the registrar stay in shared data as empty values; the store
// grows only with the number of distinct names ever registered.
const (
	routeKeyPrefix = "switchyard/route/"
	revisionKey    = "switchyard/revision"
)

// routeKey gives the shared-data key of a server name (allocates; for the sync).
func routeKey(name string) string { return routeKeyPrefix + name }

// keyBuf holds the router's lookup key: built in place, so a lookup allocates
// nothing. The VM runs one call at a time, so one buffer suffices.
var keyBuf = make([]byte, 0, len(routeKeyPrefix)+128)

// routeKeyView gives routeKey(name) as a view into keyBuf, valid until the next call.
func routeKeyView(name string) string {
	keyBuf = append(append(keyBuf[:0], routeKeyPrefix...), name...)
	return unsafe.String(unsafe.SliceData(keyBuf), len(keyBuf))
}

// Diff calls set for every name whose target differs between the live table and
// the next one, with target "" for a name that is gone, and reports the counts.
func Diff(live, next map[string]string, set func(name, target string) error) (added, changed, removed int, err error) {
	for name, target := range next {
		old, ok := live[name]
		switch {
		case !ok:
			added++
		case old != target:
			changed++
		default:
			continue
		}
		if err = set(name, target); err != nil {
			return
		}
	}
	for name := range live {
		if _, ok := next[name]; !ok {
			removed++
			if err = set(name, ""); err != nil {
				return
			}
		}
	}
	return
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

// unsafeBytes views s as bytes for a host call that only reads them.
func unsafeBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
