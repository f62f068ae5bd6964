package routing

import (
	"unsafe"

	"switchyard/internal/contract"
)

// Ejections is the passive health check's view the balancer consults
// (health.Tracker): Len 0 spares the check per target.
type Ejections interface {
	Len() int
	Ejected(address string) bool
}

// balanceSlots is the number of per-name round-robin states a router VM keeps. A
// name and set may live in two slots (by two parts of its hash); a third that needs
// one of them takes the one used least recently. A name whose state was taken starts
// afresh: it still gets its weights over time, just not as evenly spread, and its set
// is read again.
const balanceSlots = 256

// wrrEntry is one entry of a set as the balancer keeps it: where its address is in
// the set string, its weight and whether it is routable or down.
type wrrEntry struct {
	start, end uint16 // the address is set[start:end] (a set is at most 64 × 108 bytes)
	weight     uint16
	flags      uint16 // entryRoutable, entryDown
}

const (
	entryRoutable = 1 << iota // not draining, weight > 0
	entryDown                 // down by the registrar's active health check
)

// maxSchedule bounds a precomputed round: sets whose candidates weigh more in total
// are picked round by round.
const maxSchedule = 256

// wrrState is the smooth weighted round robin state of one name's target set: its
// entries, read once when the state is (re)set, and the current weight of each (a
// weight is at most MaxWeight and a set at most MaxTargets entries, so a current
// weight stays within ±MaxWeight·MaxTargets).
//
// Smooth weighted round robin from the zero state repeats itself after as many picks
// as the candidates' weights add up to, so a state that keeps being used gets that
// cycle precomputed (schedule): a pick is then one step along it, whatever the number
// of targets — in the wasm the filter runs as, a round over four targets costs more
// than the rest of the routing decision. Round-by-round picking remains for the first
// picks of a state, while a target of the set is ejected, in panic, and for sets
// weighing more than maxSchedule.
type wrrState struct {
	key      uint64 // hash of the name and its set; another key: the state is reset
	used     uint64 // the balancer's clock when the state was last used
	n        int    // entries read
	picks    int    // round-by-round picks since the reset
	planned  bool   // plan ran (it leaves period 0 for a set too heavy to plan)
	period   int    // length of schedule; 0: none
	pos      int    // next step of schedule
	schedule [maxSchedule]uint8
	current  [contract.MaxTargets]int32
	entries  [contract.MaxTargets]wrrEntry
}

// balancer keeps the round-robin states of one router VM in a fixed table, keyed by a
// hash of the name and its target-set string: picking allocates nothing, the memory
// does not grow with the names routed, a changed set starts a fresh state, and a set
// is parsed only when its state is (re)set, not per request.
type balancer struct {
	slots [balanceSlots]wrrState
	clock uint64 // counts picks, for the least recently used slot
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
	if st.period > 0 && (!checkEjected || !st.anyEjected(set, ej)) {
		e := st.entries[st.schedule[st.pos]]
		if st.pos++; st.pos == st.period {
			st.pos = 0
		}
		return pick{target: set[e.start:e.end]}
	}
	if p, routable := st.round(set, ej, checkEjected, false); p.target != "" || routable == 0 {
		p.noActive = p.target == ""
		if st.picks++; st.picks >= 2 && !st.planned && !checkEjected {
			st.plan()
		}
		return p
	}
	p, _ := st.round(set, nil, false, true)
	p.panic = true
	return p
}

// round runs one round of smooth weighted round robin over the set's candidates:
// with all set, every routable entry; else the routable entries not down and not
// ejected. It reports the number of routable entries. (Written for the wasm the
// filter runs as, where each instruction counts: int32 weights, ranges over slices
// without bounds checks.)
func (st *wrrState) round(set string, ej Ejections, checkEjected, all bool) (pick, int) {
	best, routable := -1, 0
	var total, bestCurrent int32
	current := st.current[:st.n]
	for i, e := range st.entries[:len(current)] {
		if e.flags&entryRoutable == 0 {
			continue
		}
		routable++
		if !all && (e.flags&entryDown != 0 || checkEjected && ej.Ejected(set[e.start:e.end])) {
			continue
		}
		c := current[i] + int32(e.weight)
		current[i] = c
		total += int32(e.weight)
		if best < 0 || c > bestCurrent {
			best, bestCurrent = i, c
		}
	}
	if best < 0 {
		return pick{}, routable
	}
	current[best] -= total
	e := st.entries[best]
	return pick{target: set[e.start:e.end]}, routable
}

// anyEjected reports whether a candidate of the schedule is ejected.
func (st *wrrState) anyEjected(set string, ej Ejections) bool {
	for _, e := range st.entries[:st.n] {
		if e.flags == entryRoutable && ej.Ejected(set[e.start:e.end]) {
			return true
		}
	}
	return false
}

// plan precomputes the cycle of smooth weighted round robin over the routable entries
// that are not down, when it is at most maxSchedule picks long, and continues it where
// the round-by-round picks since the reset (all from the zero state) left off.
func (st *wrrState) plan() {
	st.planned = true
	total := 0
	for _, e := range st.entries[:st.n] {
		if e.flags == entryRoutable {
			total += int(e.weight)
		}
	}
	if total == 0 || total > maxSchedule {
		return
	}
	var current [contract.MaxTargets]int32
	for k := 0; k < total; k++ {
		best := -1
		for i, e := range st.entries[:st.n] {
			if e.flags != entryRoutable {
				continue
			}
			current[i] += int32(e.weight)
			if best < 0 || current[i] > current[best] {
				best = i
			}
		}
		current[best] -= int32(total)
		st.schedule[k] = uint8(best)
	}
	st.period, st.pos = total, st.picks%total
}

// state is the round-robin state of the name and set, reset (and the set read again)
// when the slot held another name or set.
func (b *balancer) state(serverName, set string) *wrrState {
	h := setKey(serverName, set)
	b.clock++
	st := &b.slots[h%balanceSlots]
	if st.key != h {
		if other := &b.slots[(h>>32)%balanceSlots]; other.key == h || other.used < st.used {
			st = other
		}
	}
	st.used = b.clock
	if st.key != h {
		st.key, st.picks, st.planned, st.period, st.pos = h, 0, false, 0, 0
		st.current = [contract.MaxTargets]int32{}
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
		e := wrrEntry{start: uint16(start), end: uint16(start + len(t.Address)), weight: uint16(t.Weight)}
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

// setKey is the state key of a name and its set: a 64-bit FNV-1a hash taken eight
// bytes at a time (one load per word, which matters in wasm, where Go does not merge
// byte loads), the name and the set each closed by its length.
func setKey(serverName, set string) uint64 {
	return hashString(hashString(hashSeed, serverName), set)
}

const (
	hashSeed  = 14695981039346656037 // FNV-1a's 64-bit offset basis
	hashPrime = 1099511628211        // FNV-1a's 64-bit prime
)

func hashString(h uint64, s string) uint64 {
	p := unsafe.Pointer(unsafe.StringData(s))
	n := len(s)
	for ; n >= 8; n -= 8 {
		h = (h ^ *(*uint64)(p)) * hashPrime
		p = unsafe.Add(p, 8)
	}
	for i := 0; i < n; i++ {
		h = (h ^ uint64(*(*byte)(unsafe.Add(p, i)))) * hashPrime
	}
	return (h ^ uint64(len(s))) * hashPrime
}
