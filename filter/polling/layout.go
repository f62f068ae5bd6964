package polling

import (
	"strconv"
	"strings"
	"unsafe"

	"switchyard/internal/contract"
	"switchyard/internal/validate"
)

// The route table in proxy-wasm shared data (one store per vm_id, seen by the poller
// and every router VM). What routers read:
//
//	switchyard/route/<name>  → the target as registered; "" = not registered (ABI 0.2.1
//	                           has no delete, so a removed name is written empty).
//	switchyard/revision      → the revision of the table, in decimal. Absent until the
//	                           first table is written: routers tell "not loaded yet"
//	                           (503) from "unknown name" (404) by its presence.
//
// What only a poller reads, when it starts:
//
//	switchyard/table         → "<revision> <lineage>" of the table the route keys hold
//	                           (lineage "" for a version-1 registrar). Before the first
//	                           route key of an update the poller appends " dirty"; it
//	                           writes the new value after the route keys and before
//	                           switchyard/revision. A poller that restarts asks for the
//	                           changes since exactly that table, or, when it finds it
//	                           dirty (the last poller died half-way), for a full table.
//	switchyard/names/head    → "<generation> <segments>": the names index lives in the
//	                           keys switchyard/names/<generation>/0 … /<segments-1>,
//	                           generation "a" or "b".
//	switchyard/names/<g>/<n> → a segment: names, one per line, at most SegmentBytes.
//
// The poller writes only what changed, then switchyard/table, then switchyard/revision
// LAST. Each value is written whole by one proxy_set_shared_data, so a router reads
// either the old or the new target of a name, never a mix.
//
// The index exists because shared data outlives a poller's VM: when only the poller is
// replaced (the router VMs keep the vm_id's store alive), the new poller must learn
// which names the store holds, or a name removed while no poller ran would stay
// routable for good. The promise: the index lists every non-empty route key at every
// moment, even if the poller dies between two writes. How it is kept:
//
//   - A name is appended to the last segment (or a new segment, then the head) before
//     its route key is first written. Appending rewrites one segment of at most
//     SegmentBytes: the cost of a change does not grow with the table.
//   - A removed name stays listed (its route key is empty) until a compaction.
//   - Compaction writes the live names into the other generation's segments, then
//     switches the head to it in one write, then empties the old generation's
//     segments. Until the head switches, the old generation (a superset) is in force.
//     It runs after a full table when the index lists names the table does not hold,
//     and after a delta when the index lists more than twice the live names plus
//     compactSlack, so its O(table) cost is amortised over as many changes.
//
// Names hold no line breaks (validate.IsServerName), so segments need no escaping.
// LegacyNamesKey, switchyard/names, is the index as one value (rewritten per change),
// as older filters wrote it; a poller that finds only that key reads it and replaces
// it at its first compaction.
const (
	RouteKeyPrefix = contract.RouteKeyPrefix
	RevisionKey    = contract.RevisionKey
	StateKey       = contract.KeyPrefix + "table"
	PolledKey      = contract.PolledKey
	HeadKey        = contract.KeyPrefix + "names/head"
	SegmentPrefix  = contract.KeyPrefix + "names/"
	LegacyNamesKey = contract.KeyPrefix + "names"

	// SegmentBytes bounds one index segment, hence the bytes a new name costs to list.
	SegmentBytes = 4 << 10
	compactSlack = 1024
)

// Store is shared data: Get is proxy_get_shared_data, Set proxy_set_shared_data with
// cas 0 (unconditional). Set must copy key and value if it keeps them: the poller
// passes views of buffers it reuses.
type Store interface {
	Get(key string) ([]byte, bool)
	Set(key, value string) error
}

// stateValue is the value of StateKey: the revision and lineage of the table the route
// keys hold, not a table (the key's string, switchyard/table, stays for the stores
// that outlive a filter upgrade).
func stateValue(revision uint64, lineage string, dirty bool) string {
	v := strconv.FormatUint(revision, 10) + " " + lineage
	if dirty {
		v += " dirty"
	}
	return v
}

// RouteKey gives the shared-data key of a server name.
func RouteKey(name string) string { return RouteKeyPrefix + name }

// routeKeyBuf holds the key of the route being written: Set copies what it keeps (the
// host copies keys and values into shared data), so one buffer serves every write and
// a table of 100,000 names costs no 100,000 key strings.
var routeKeyBuf = make([]byte, 0, len(RouteKeyPrefix)+128)

func routeKeyView(name string) string {
	routeKeyBuf = append(append(routeKeyBuf[:0], RouteKeyPrefix...), name...)
	return unsafe.String(unsafe.SliceData(routeKeyBuf), len(routeKeyBuf))
}

func segmentKey(gen byte, n int) string {
	return SegmentPrefix + string(gen) + "/" + strconv.Itoa(n)
}

// index is the poller's view of the names index in shared data.
type index struct {
	gen    byte   // 'a' or 'b'; 0 before anything was written
	segs   int    // segments in use
	tail   []byte // the content of segment segs-1
	listed int    // names listed, removed ones included
	legacy bool   // LegacyNamesKey was found: blank it at compaction
}

// appendNames lists names in the index, writing the last segment (and new segments,
// then the head) through st. The caller writes the names' route keys only after it
// returns nil.
func (ix *index) appendNames(st Store, names func(yield func(string) bool)) error {
	gen := ix.gen
	if gen == 0 {
		gen = 'a'
	}
	segs := ix.segs
	dirtyFrom := segs - 1 // first segment to (re)write
	if segs == 0 {
		segs, dirtyFrom = 1, 0
	}
	// The tail is built in a buffer of a segment's size, so a long append costs the
	// segments it writes, not a doubling of each.
	tail := append(make([]byte, 0, SegmentBytes), ix.tail...)
	var full []string // finished segments from dirtyFrom on, before the current tail
	added := 0
	for n := range names {
		if len(tail) > 0 && len(tail)+len(n)+1 > SegmentBytes {
			full = append(full, string(tail))
			tail = tail[:0]
			segs++
		}
		tail = append(append(tail, n...), '\n')
		added++
	}
	if added == 0 {
		return nil
	}
	ix.gen = gen
	for i, s := range full {
		if err := st.Set(segmentKey(ix.gen, dirtyFrom+i), s); err != nil {
			return err
		}
	}
	if err := st.Set(segmentKey(ix.gen, segs-1), string(tail)); err != nil {
		return err
	}
	if segs != ix.segs {
		if err := st.Set(HeadKey, string(ix.gen)+" "+strconv.Itoa(segs)); err != nil {
			return err
		}
	}
	ix.segs, ix.tail, ix.listed = segs, tail, ix.listed+added
	return nil
}

// compact makes the index list exactly names, in the other generation (see above).
func (ix *index) compact(st Store, names func(yield func(string) bool)) error {
	old, oldSegs, legacy := ix.gen, ix.segs, ix.legacy
	next := byte('a')
	if old == 'a' {
		next = 'b'
	}
	n := &index{gen: next}
	var segs []string
	var tail []byte
	listed := 0
	for name := range names {
		listed++
		if len(tail) > 0 && len(tail)+len(name)+1 > SegmentBytes {
			segs = append(segs, string(tail))
			tail = nil
		}
		tail = append(append(tail, name...), '\n')
	}
	segs = append(segs, string(tail))
	for i, s := range segs {
		if err := st.Set(segmentKey(next, i), s); err != nil {
			return err
		}
	}
	if err := st.Set(HeadKey, string(next)+" "+strconv.Itoa(len(segs))); err != nil {
		return err
	}
	n.segs, n.tail, n.listed = len(segs), tail, listed
	*ix = *n
	// The old generation is out of force: empty it to give its memory back. This is
	// housekeeping only (a later compaction into it overwrites it from segment 0, and
	// segments past the head's count are never read), so a refused write ends it
	// without failing the compaction, which took effect with the head.
	if old != 0 {
		for i := 0; i < oldSegs; i++ {
			if st.Set(segmentKey(old, i), "") != nil {
				return nil
			}
		}
	}
	if legacy {
		st.Set(LegacyNamesKey, "")
	}
	return nil
}

// Recovered is what a starting poller finds in shared data left by an earlier poller.
type Recovered struct {
	Live     map[string]string // every name the index lists → its route key's value ("" when removed or never written)
	Revision uint64
	Lineage  string
	Loaded   bool // a valid revision was found
	Dirty    bool // the last poller died while writing an update: only a full table repairs it
	index    index
}

// Recover reads the table an earlier poller left in shared data: the state key (or, from an
// older filter, the revision key), the index, and the route key of every name
// the index lists. The result is what shared data holds, not what the index claims,
// so the first update of the new poller writes exactly what differs, including names a
// poller that died half-way had written. Lines that are not valid server names are
// skipped (the store is ours, but it is cheap to stay safe); a table key that does not
// parse counts as no table.
func Recover(st Store) Recovered {
	r := Recovered{Live: map[string]string{}}
	if v, ok := st.Get(StateKey); ok {
		f := strings.Split(string(v), " ")
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err == nil && len(f) >= 2 && len(f) <= 3 && (f[1] == "" || ValidLineage(f[1])) && (len(f) == 2 || f[2] == "dirty") {
			r.Revision, r.Lineage, r.Loaded, r.Dirty = n, f[1], true, len(f) == 3
		}
	} else if v, ok := st.Get(RevisionKey); ok {
		if n, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			r.Revision, r.Loaded = n, true
		}
	}
	add := func(text string) {
		for _, name := range strings.Split(text, "\n") {
			if !validate.IsServerName(name) {
				continue
			}
			if _, dup := r.Live[name]; dup {
				continue
			}
			v, _ := st.Get(RouteKey(name))
			r.Live[name] = string(v)
			r.index.listed++
		}
	}
	if v, ok := st.Get(HeadKey); ok {
		genText, segText, _ := strings.Cut(string(v), " ")
		segs, err := strconv.Atoi(segText)
		if err == nil && (genText == "a" || genText == "b") && segs >= 0 {
			r.index.gen, r.index.segs = genText[0], segs
			for i := 0; i < segs; i++ {
				seg, _ := st.Get(segmentKey(r.index.gen, i))
				add(string(seg))
				if i == segs-1 {
					r.index.tail = append([]byte(nil), seg...)
				}
			}
		}
	}
	if v, ok := st.Get(LegacyNamesKey); ok && len(v) > 0 {
		// An older filter's index; its names are listed in no segment, so the
		// first update compacts them into one.
		add(string(v))
		r.index.legacy = true
	}
	return r
}
