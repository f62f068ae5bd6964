package polling

import (
	"strconv"
	"strings"
	"unsafe"

	"switchyard/internal/contract"
	"switchyard/internal/validate"
)

// The route table in proxy-wasm shared data (one store per vm_id, seen by the poller
// and every router VM). The table lives in one of two generations, "a" and "b"; one
// write of a pointer switches routers from one to the other.
//
// What routers read, per request:
//
//	switchyard/current          → the route key prefix of the current generation,
//	                              "switchyard/a/route/" or "switchyard/b/route/".
//	                              Absent until the first table is complete: routers
//	                              tell "not loaded yet" (503) from "unknown name" (404)
//	                              by its presence.
//	switchyard/<g>/route/<name> → the name's target set (LAYOUT: a plain address or
//	                              "*..."); "" or absent = not registered (ABI 0.2.1 has
//	                              no delete, so a removed name is written empty).
//
// What only the poller reads:
//
//	switchyard/<g>/state        → the state of generation g:
//	                              ""/absent  clean: no route key of g holds a target and
//	                                         its index lists nothing;
//	                              "loading <revision> <lineage> <received> <next>"  a full
//	                                         table is being streamed into g: its pages up
//	                                         to (not including) the name <next> are
//	                                         written. Written before the first route key.
//	                              "live <revision> <lineage> <size> <listed>[ dirty]"
//	                                         g holds that complete table. " dirty" while a
//	                                         delta is written to it in place.
//	                              "retired"  g is out of force and being emptied.
//	switchyard/<g>/names        → "<segments>": g's names index is in the keys
//	                              switchyard/<g>/names/0 … /<segments-1>, names one per
//	                              line, each segment at most SegmentBytes.
//	switchyard/revision         → the current table's revision (tools and tests).
//
// A full table (first load, new lineage, repair, a proxy behind the retained history)
// is streamed page by page into the generation that is not current: each page's names
// are listed in the index, then their route keys written, then the state key records
// the page; the poller holds one page at a time. After the last page the state key
// says live, then switchyard/current is written (the switch: one write, so a request,
// which reads the pointer once, is answered wholly from the old table or wholly from
// the new), then the old generation is marked retired. After RetireGraceSeconds (no
// router still reads it, docs/proxy-wasm-host.md) the retired generation is emptied in
// chunks of at most CleanBudget route keys per tick: every name its index lists
// written "", then its segments, then its state key "" (clean). A full table may be
// streamed into a generation only when it is clean, so two generations bound the
// number of keys: a name costs at most one key per generation, whatever the number
// of reloads.
//
// A delta is written in place into the current generation as before: its state key
// gets " dirty" first, names new to the generation are listed before their route keys
// are first written, and the state key without " dirty" comes last. A poller that
// starts and finds the current generation dirty asks for a full table, which repairs it
// by replacing it. Removed names stay listed until the generation is replaced; when it
// lists more than twice its live names plus compactSlack, the poller asks for a full
// table, so the index stays O(table).
//
// A poller that dies leaves shared data self-describing: the next one (the same sync
// VM's successor, or the router that takes the lease) resumes a "loading" generation
// from its next page (or, when the registrar no longer serves that snapshot, empties
// it and starts over), and finishes emptying a "retired" one. Routers meanwhile read
// the complete current generation.
//
// The first layout (switchyard/route/<name>, switchyard/table, switchyard/names/...) is
// migrated: a poller that finds its table and no switchyard/current points routers at
// it (switchyard/current = "switchyard/route/", so they keep routing), asks for a full
// table, switches to a generation, then empties the old keys through the old index.
const (
	CurrentKey  = contract.CurrentKey
	RevisionKey = contract.RevisionKey
	PolledKey   = contract.PolledKey

	// The first layout's keys, read to migrate a table it wrote.
	LegacyRouteKeyPrefix = contract.LegacyRouteKeyPrefix
	LegacyStateKey       = contract.KeyPrefix + "table"      // "<revision> <lineage>[ dirty]"
	LegacyHeadKey        = contract.KeyPrefix + "names/head" // "<a|b> <segments>"
	LegacySegmentPrefix  = contract.KeyPrefix + "names/"     // + "<a|b>/<n>"
	LegacyNamesKey       = contract.KeyPrefix + "names"      // its first version's whole index

	// SegmentBytes bounds one index segment, hence the bytes a new name costs to list.
	SegmentBytes = 4 << 10
	compactSlack = 1024

	// RetireGraceSeconds is how long a generation that is no longer current is left
	// untouched before it is emptied: a router reads switchyard/current and then the
	// route key within one callback (docs/proxy-wasm-host.md, "Shared data"), so a
	// read of the old generation can only be that far behind the switch if a worker
	// thread stalls between two host calls for that long.
	RetireGraceSeconds = 1
	// CleanBudget bounds the route keys emptied per tick, so a tick of the poller (the
	// main thread in Envoy, or a worker for a router holding the lease) stays short.
	CleanBudget = 20000
)

// Store is shared data: Get is proxy_get_shared_data, Set proxy_set_shared_data with
// cas 0 (unconditional). Set must copy key and value if it keeps them: the sync
// passes views of buffers it reuses.
type Store interface {
	Get(key string) ([]byte, bool)
	Set(key, value string) error
	// Peek is Get into a buffer the next Peek reuses: the value is valid until then.
	// The poller reads a route key per name of a full table with it, so a reload of
	// 1,000,000 names leaves no 1,000,000 values for the VM's GC.
	Peek(key string) (string, bool)
}

// gen is a generation of the table: 'a', 'b', or 'L' for the first layout's keys.
type gen byte

const legacyGen gen = 'L'

func genOf(prefix string) gen {
	switch prefix {
	case contract.RouteKeyPrefixA:
		return 'a'
	case contract.RouteKeyPrefixB:
		return 'b'
	case LegacyRouteKeyPrefix:
		return legacyGen
	}
	return 0
}

// routePrefix is the value of CurrentKey that makes routers read g.
func (g gen) routePrefix() string {
	switch g {
	case 'a':
		return contract.RouteKeyPrefixA
	case 'b':
		return contract.RouteKeyPrefixB
	}
	return LegacyRouteKeyPrefix
}

// other is the generation a full table is streamed into while g is current.
func (g gen) other() gen {
	if g == 'a' {
		return 'b'
	}
	return 'a'
}

func (g gen) String() string {
	if g == legacyGen {
		return "of the first layout"
	}
	return string(g)
}

func (g gen) stateKey() string { return contract.KeyPrefix + string(g) + "/state" }
func (g gen) namesKey() string { return contract.KeyPrefix + string(g) + "/names" }

func (g gen) segmentKey(n int) string {
	return contract.KeyPrefix + string(g) + "/names/" + strconv.Itoa(n)
}

// RouteKey gives the shared-data key of a server name in generation "a" or "b", or in
// the first layout for any other byte.
func RouteKey(g byte, name string) string { return gen(g).routePrefix() + name }

// routeKeyBuf holds the key of the route being read or written: Set copies what it
// keeps (the host copies keys and values into shared data), so one buffer serves every
// write and a table of 1,000,000 names costs no 1,000,000 key strings.
var routeKeyBuf = make([]byte, 0, 64+128)

func routeKeyView(g gen, name string) string {
	routeKeyBuf = contract.AppendRouteKey(routeKeyBuf[:0], g.routePrefix(), name)
	return unsafe.String(unsafe.SliceData(routeKeyBuf), len(routeKeyBuf))
}

// The values of a generation's state key.

type genPhase int

const (
	genClean genPhase = iota
	genLoading
	genLive
	genRetired
)

// genRecord is a generation's state key, parsed.
type genRecord struct {
	phase    genPhase
	revision uint64
	lineage  string
	count    int    // loading: names received; live: names with a target
	listed   int    // live: names the index lists
	next     string // loading: the first name of the next page
	dirty    bool   // live: a delta is being written
}

func (t genRecord) String() string {
	switch t.phase {
	case genLoading:
		return "loading " + strconv.FormatUint(t.revision, 10) + " " + t.lineage + " " + strconv.Itoa(t.count) + " " + t.next
	case genLive:
		v := "live " + strconv.FormatUint(t.revision, 10) + " " + t.lineage + " " + strconv.Itoa(t.count) + " " + strconv.Itoa(t.listed)
		if t.dirty {
			v += " dirty"
		}
		return v
	case genRetired:
		return "retired"
	}
	return ""
}

// parseGenRecord reads a state key; ok false when it does not parse (the store is ours,
// but a value that means nothing is treated as a generation to empty, never trusted).
func parseGenRecord(v string) (t genRecord, ok bool) {
	if v == "" {
		return genRecord{phase: genClean}, true
	}
	f := strings.Split(v, " ")
	switch {
	case f[0] == "retired" && len(f) == 1:
		return genRecord{phase: genRetired}, true
	case f[0] == "loading" && len(f) == 5:
		t.phase, t.next = genLoading, f[4]
		if t.next != "" && !validate.IsServerName(t.next) {
			return t, false
		}
	case f[0] == "live" && (len(f) == 5 || len(f) == 6 && f[5] == "dirty"):
		t.phase, t.dirty = genLive, len(f) == 6
		n, err := strconv.Atoi(f[4])
		if err != nil || n < 0 {
			return t, false
		}
		t.listed = n
	default:
		return t, false
	}
	rev, err := strconv.ParseUint(f[1], 10, 64)
	n, err2 := strconv.Atoi(f[3])
	if err != nil || err2 != nil || n < 0 || f[2] != "" && !ValidLineage(f[2]) {
		return t, false
	}
	t.revision, t.lineage, t.count = rev, f[2], n
	return t, true
}

// readGenRecord reads and parses g's state key.
func readGenRecord(st Store, g gen) (genRecord, bool) {
	v, _ := st.Get(g.stateKey())
	return parseGenRecord(string(v))
}

// index is a generation's names index as the poller keeps it: its segment count and
// the content of its last segment, so an append rewrites one segment.
type index struct {
	g      gen
	segs   int    // segments in use
	tail   []byte // the content of segment segs-1
	listed int    // names listed, removed ones included
}

// readIndex reads g's index head and last segment.
func readIndex(st Store, g gen, listed int) index {
	ix := index{g: g, listed: listed}
	if v, ok := st.Get(g.namesKey()); ok {
		if n, err := strconv.Atoi(string(v)); err == nil && n > 0 {
			ix.segs = n
			seg, _ := st.Get(g.segmentKey(n - 1))
			ix.tail = append(make([]byte, 0, SegmentBytes), seg...)
		}
	}
	return ix
}

// appendNames lists names in the index, writing the last segment, each new segment
// and the head through st (lister). The caller writes the names' route keys only after
// it returns nil.
func (ix *index) appendNames(st Store, names func(yield func(string) bool)) error {
	l := ix.lister(st)
	for n := range names {
		if !l.fits(n) {
			if err := l.flush(); err != nil {
				return err
			}
			l.next()
		}
		l.add(n)
	}
	return l.flush()
}

// lister lists names in an index segment by segment (appendNames; Machine.writePage,
// which writes each name's route key once its segment is written): names fill the
// index's last segment (the tail is built in a buffer of a segment's size, so a long
// append costs the segments it writes, not a doubling of each); flush writes it, then
// the head when the index has a new segment; next starts a new segment after a flush
// of a full one.
type lister struct {
	ix    *index
	st    Store
	tail  []byte // the segment being filled
	segs  int    // segments, the one being filled included
	added int    // names added since the last flush
}

func (ix *index) lister(st Store) lister {
	segs := max(ix.segs, 1)
	return lister{ix: ix, st: st, tail: append(make([]byte, 0, SegmentBytes), ix.tail...), segs: segs}
}

// fits reports whether name fits in the segment being filled.
func (l *lister) fits(name string) bool {
	return len(l.tail) == 0 || len(l.tail)+len(name)+1 <= SegmentBytes
}

func (l *lister) add(name string) {
	l.tail = append(append(l.tail, name...), '\n')
	l.added++
}

// flush writes the segment being filled and, when it is new, the head; the index then
// lists its names.
func (l *lister) flush() error {
	if l.added == 0 {
		return nil
	}
	if err := l.st.Set(l.ix.g.segmentKey(l.segs-1), unsafe.String(unsafe.SliceData(l.tail), len(l.tail))); err != nil {
		return err
	}
	if l.segs != l.ix.segs {
		if err := l.st.Set(l.ix.g.namesKey(), strconv.Itoa(l.segs)); err != nil {
			return err
		}
	}
	l.ix.segs, l.ix.listed, l.added = l.segs, l.ix.listed+l.added, 0
	l.ix.tail = append(l.ix.tail[:0], l.tail...)
	return nil
}

// next starts a new segment; the one being filled must have been flushed.
func (l *lister) next() {
	l.tail = l.tail[:0]
	l.segs++
}

// segmentNames yields the valid server names of one index segment (lines that are not
// valid names are skipped: the store is ours, but it is cheap to stay safe).
func segmentNames(seg string) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		for len(seg) > 0 {
			line, rest, _ := strings.Cut(seg, "\n")
			seg = rest
			if validate.IsServerName(line) && !yield(line) {
				return
			}
		}
	}
}

// legacyTable is a table the first layout left in shared data.
type legacyTable struct {
	revision uint64
	lineage  string
	found    bool
}

// readLegacyTable reads the first layout's state key (or, from its first version,
// the revision key alone).
func readLegacyTable(st Store) legacyTable {
	var t legacyTable
	if v, ok := st.Get(LegacyStateKey); ok && len(v) > 0 {
		f := strings.Split(string(v), " ")
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err == nil && len(f) >= 2 && len(f) <= 3 && (f[1] == "" || ValidLineage(f[1])) && (len(f) == 2 || f[2] == "dirty") {
			t.revision, t.lineage, t.found = n, f[1], true
		}
	} else if v, ok := st.Get(RevisionKey); ok {
		if n, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			t.revision, t.found = n, true
		}
	}
	return t
}

// legacySegmentKeys gives the keys of the first layout's index: its segments, then
// its first version's whole index; nil when there is none left.
func legacySegmentKeys(st Store) []string {
	var keys []string
	if v, ok := st.Get(LegacyHeadKey); ok {
		g, segText, _ := strings.Cut(string(v), " ")
		if n, err := strconv.Atoi(segText); err == nil && (g == "a" || g == "b") && n >= 0 {
			for i := 0; i < n; i++ {
				keys = append(keys, LegacySegmentPrefix+g+"/"+strconv.Itoa(i))
			}
		}
	}
	if v, ok := st.Get(LegacyNamesKey); ok && len(v) > 0 {
		keys = append(keys, LegacyNamesKey)
	}
	return keys
}

// legacyLeft reports whether keys of the first layout still hold anything.
func legacyLeft(st Store) bool {
	for _, k := range [...]string{LegacyHeadKey, LegacyNamesKey, LegacyStateKey} {
		if v, ok := st.Get(k); ok && len(v) > 0 {
			return true
		}
	}
	return false
}
