package routing

import (
	"hash/maphash"
	"unsafe"

	"switchyard/internal/contract"
)

// Ejections is the passive health check's view the balancer consults
// (health.Tracker): Len 0 spares the check per target.
type Ejections interface {
	Len() int
	Ejected(address string) bool
}

// balanceSlots is the number of per-name round-robin states a router VM keeps. Two
// names (or one name's old and new set) that share a slot reset each other's state:
// each still gets its weights over time, just not as evenly spread, and its set is
// read again.
const balanceSlots = 512

// wrrEntry is one entry of a set as the balancer keeps it: where its address is in
// the set string, its weight and whether it is routable or down.
type wrrEntry struct {
	start, end uint16 // the address is set[start:end] (a set is at most 64 × 108 bytes)
	weight     uint8
	flags      uint8 // entryRoutable, entryDown
}

const (
	entryRoutable = 1 << iota // not draining, weight > 0
	entryDown                 // down by the registrar's active health check
)

// wrrState is the smooth weighted round robin state of one name's target set: its
// entries, read once when the state is (re)set, and the current weight of each. A
// weight is at most MaxWeight and a set at most MaxTargets entries, so a current
// weight stays within ±MaxWeight·MaxTargets (6,400) and fits an int16.
type wrrState struct {
	key     uint64 // hash of the name and its set; another key: the state is reset
	n       int    // entries read
	current [contract.MaxTargets]int16
	entries [contract.MaxTargets]wrrEntry
}

// balancer keeps the round-robin states of one router VM in a fixed table, keyed by a
// hash of the name and its target-set string: picking allocates nothing, the memory
// does not grow with the names routed, a changed set starts a fresh state, and a set
// is parsed only when its state is (re)set, not per request.
type balancer struct {
	slots [balanceSlots]wrrState
}

// pick is the balancer's choice for one request.
type pick struct {
	target   string // "" when there is none
	panic    bool   // every routable entry is down or ejected: chosen among them anyway
	noActive bool   // no entry is routable (all draining or weight 0)
}

// pick chooses the target of a request to serverName whose target set is set, by
// nginx's smooth weighted round robin over the candidates: every candidate's current
// weight grows by its weight, the largest is chosen, and the total of the candidates'
// weights is taken off it. Candidates are the entries that are routable (not draining,
// weight > 0), not down and not ejected; when there are none but routable entries
// exist, all routable entries are candidates (panic, as Envoy's panic threshold
// routes to every host rather than none).
func (b *balancer) pick(serverName, set string, ej Ejections) pick {
	if set == "" || set[0] != contract.TargetSetMarker {
		// The plain form: one active target.
		return pick{target: set, panic: ej != nil && ej.Len() > 0 && ej.Ejected(set)}
	}
	st := b.state(serverName, set)
	checkEjected := ej != nil && ej.Len() > 0
	if p, routable := st.round(set, ej, checkEjected, false); p.target != "" || routable == 0 {
		p.noActive = p.target == ""
		return p
	}
	p, _ := st.round(set, nil, false, true)
	p.panic = true
	return p
}

// round runs one round of smooth weighted round robin over the set's candidates:
// with all set, every routable entry; else the routable entries not down and not
// ejected. It reports the number of routable entries.
func (st *wrrState) round(set string, ej Ejections, checkEjected, all bool) (pick, int) {
	best, total, routable := -1, 0, 0
	var bestCurrent int16
	for i := 0; i < st.n; i++ {
		e := &st.entries[i]
		if e.flags&entryRoutable == 0 {
			continue
		}
		routable++
		if !all && (e.flags&entryDown != 0 || checkEjected && ej.Ejected(set[e.start:e.end])) {
			continue
		}
		c := st.current[i] + int16(e.weight)
		st.current[i] = c
		total += int(e.weight)
		if best < 0 || c > bestCurrent {
			best, bestCurrent = i, c
		}
	}
	if best < 0 {
		return pick{}, routable
	}
	st.current[best] -= int16(total)
	e := &st.entries[best]
	return pick{target: set[e.start:e.end]}, routable
}

// state is the round-robin state of the name and set, reset (and the set read again)
// when the slot held another name or set.
func (b *balancer) state(serverName, set string) *wrrState {
	h := setKey(serverName, set)
	st := &b.slots[h%balanceSlots]
	if st.key != h {
		st.key = h
		st.current = [contract.MaxTargets]int16{}
		st.read(set)
	}
	return st
}

// read fills the entries from set (stopping at a malformed entry: the sync refuses
// such sets, so only a foreign writer of shared data could leave one).
func (st *wrrState) read(set string) {
	st.n = 0
	r := contract.ReadTargets(set)
	for st.n < contract.MaxTargets {
		t, ok := r.Next()
		if !ok {
			break
		}
		// t.Address is a substring of set: its offset is the distance between the two.
		start := int(uintptr(unsafe.Pointer(unsafe.StringData(t.Address))) - uintptr(unsafe.Pointer(unsafe.StringData(set))))
		e := wrrEntry{start: uint16(start), end: uint16(start + len(t.Address)), weight: uint8(t.Weight)}
		if t.Routable() {
			e.flags |= entryRoutable
		}
		if t.Down {
			e.flags |= entryDown
		}
		st.entries[st.n] = e
		st.n++
	}
}

// hashSeed keys the hashes of this VM's balancer (hash/maphash: the runtime's string
// hash, many bytes per step, no allocation).
var hashSeed = maphash.MakeSeed()

// setKey is the state key of a name and its set.
func setKey(serverName, set string) uint64 {
	return maphash.String(hashSeed, serverName)*0x9e3779b97f4a7c15 ^ maphash.String(hashSeed, set)
}
