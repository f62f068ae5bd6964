package main

import (
	"encoding/binary"
	"strconv"
	"strings"
	"unsafe"

	"switchyard/internal/validate"
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
//	switchyard/names         → the index: every name that may hold a target, one per
//	                           line. Only the sync reads it, when it starts (see
//	                           RecoverTable); routers never do.
//
// The sync writes only the names that changed, then the revision key LAST. Each value
// is written whole by one proxy_set_shared_data, so a router reads either the old or
// the new target of a name, never a mix. A router reading in the middle of a sync may
// see some names already at the new revision and others not yet; every target it can
// see was valid in one of the two snapshots.
//
// Names removed from the registrar stay in shared data as empty values; the store
// grows only with the number of distinct names ever registered.
//
// The index exists because shared data outlives a sync VM: when only the sync is
// replaced (the router VMs keep the vm_id's store alive), the new sync must learn
// which names the store holds, or a name removed while no sync ran would stay
// routable for good. The promise is that the index always covers every non-empty
// route key, even if the sync dies between two writes: before a sync writes a new
// name it writes the index as old ∪ new names, and only after it has emptied the
// removed names does it shrink the index to the new names.
const (
	routeKeyPrefix = "switchyard/route/"
	revisionKey    = "switchyard/revision"
	namesKey       = "switchyard/names"
)

// uncertainTarget is a target no valid snapshot holds. The sync puts it in its live
// table for a name whose shared-data value it may have changed in an apply that then
// failed, so the next diff writes that name again (or empties it) whatever it holds.
const uncertainTarget = "\x00"

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

// WriteTable brings shared data from the live table to next through set (a
// proxy_set_shared_data of key and value): the index grown to live ∪ next when next
// adds names, every changed name, the index shrunk to next when names were removed.
// The revision key is the caller's to write last. A name is marked uncertainTarget
// in live before it is written, so after an error live still describes what shared
// data may hold and the next WriteTable from it repairs everything.
func WriteTable(live, next map[string]string, set func(key, value string) error) (added, changed, removed int, err error) {
	if AddsNames(live, next) {
		if err = set(namesKey, EncodeNames(live, next)); err != nil {
			return
		}
	}
	added, changed, removed, err = Diff(live, next, func(name, target string) error {
		live[name] = uncertainTarget
		return set(routeKey(name), target)
	})
	if err == nil && removed > 0 {
		err = set(namesKey, EncodeNames(next))
	}
	return
}

// AddsNames reports whether next holds a name that live does not, i.e. whether the
// index must grow before the names are written.
func AddsNames(live, next map[string]string) bool {
	for name := range next {
		if _, ok := live[name]; !ok {
			return true
		}
	}
	return false
}

// EncodeNames gives the index value for the union of the tables' names, one per
// line. Server names hold no line breaks, so the encoding needs no escaping.
func EncodeNames(tables ...map[string]string) string {
	n := 0
	for _, t := range tables {
		n += len(t) * 16
	}
	var b strings.Builder
	b.Grow(n)
	for i, t := range tables {
		for name := range t {
			if i > 0 && inAny(tables[:i], name) {
				continue
			}
			b.WriteString(name)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func inAny(tables []map[string]string, name string) bool {
	for _, t := range tables {
		if _, ok := t[name]; ok {
			return true
		}
	}
	return false
}

// Recovered is what a starting sync finds in shared data left by an earlier sync.
type Recovered struct {
	Live     map[string]string // the non-empty route keys the index lists
	Revision uint64
	Loaded   bool // a revision key with a valid revision exists
}

// RecoverTable reads the table an earlier sync left in shared data, through get (a
// proxy_get_shared_data): the revision key, the index, and the route key of every
// name the index lists. The result is what shared data holds, not what the index
// claims, so the first diff of the new sync writes exactly what differs, including
// names a sync that died half-way had written. Lines of the index that are not valid
// server names are skipped (the store is ours, but it is cheap to stay safe), and a
// revision key that is not a number counts as no table.
func RecoverTable(get func(key string) ([]byte, bool)) Recovered {
	r := Recovered{Live: map[string]string{}}
	if v, ok := get(revisionKey); ok {
		if n, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			r.Revision, r.Loaded = n, true
		}
	}
	index, ok := get(namesKey)
	if !ok {
		return r
	}
	for _, name := range strings.Split(string(index), "\n") {
		if !validate.IsServerName(name) {
			continue
		}
		if v, ok := get(routeKey(name)); ok && len(v) > 0 {
			r.Live[name] = string(v)
		}
	}
	return r
}
