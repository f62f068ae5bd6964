package routing

import (
	"encoding/binary"
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
// each still gets its weights over time, just not as evenly spread.
const balanceSlots = 1024

// wrrState is the smooth weighted round robin state of one name's target set: the
// current weight of each entry, by position. A weight is at most MaxWeight and a set
// at most MaxTargets entries, so a current weight stays within ±MaxWeight·MaxTargets
// (6,400) and fits an int16.
type wrrState struct {
	key     uint64 // hash of the name and its set; another key: the state is reset
	current [contract.MaxTargets]int16
}

// balancer keeps the round-robin states of one router VM in a fixed table, keyed by a
// hash of the name and its target-set string: picking allocates nothing, the memory
// does not grow with the names routed, and a changed set starts a fresh state.
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
	if p, routable := b.round(st, set, ej, checkEjected, false); p.target != "" || routable == 0 {
		p.noActive = p.target == ""
		return p
	}
	p, _ := b.round(st, set, nil, false, true)
	p.panic = true
	return p
}

// round runs one round of smooth weighted round robin over the set's candidates:
// with all set, every routable entry; else the routable entries not down and not
// ejected. It reports the number of routable entries.
func (b *balancer) round(st *wrrState, set string, ej Ejections, checkEjected, all bool) (pick, int) {
	r := contract.ReadTargets(set)
	best, total, routable := -1, 0, 0
	var bestCurrent int16
	var bestTarget string
	for i := 0; i < contract.MaxTargets; i++ {
		t, ok := r.Next()
		if !ok {
			break
		}
		if !t.Routable() {
			continue
		}
		routable++
		if !all && (t.Down || checkEjected && ej.Ejected(t.Address)) {
			continue
		}
		c := st.current[i] + int16(t.Weight)
		st.current[i] = c
		total += t.Weight
		if best < 0 || c > bestCurrent {
			best, bestCurrent, bestTarget = i, c, t.Address
		}
	}
	if best < 0 {
		return pick{}, routable
	}
	st.current[best] -= int16(total)
	return pick{target: bestTarget}, routable
}

// state is the round-robin state of the name and set, reset when the slot held
// another name or set.
func (b *balancer) state(serverName, set string) *wrrState {
	h := hashString(hashString(hashSeed, serverName), set)
	st := &b.slots[h%balanceSlots]
	if st.key != h {
		st.key = h
		st.current = [contract.MaxTargets]int16{}
	}
	return st
}

const (
	hashSeed  = 14695981039346656037 // FNV-1a's 64-bit offset basis
	hashPrime = 1099511628211        // FNV-1a's 64-bit prime
)

// hashString continues h over s eight bytes at a time (FNV-1a's step on words, not
// bytes: a set of four targets is about 80 bytes, hashed on every request), then
// mixes in the length so that ("ab", "c") and ("a", "bc") differ.
func hashString(h uint64, s string) uint64 {
	p := unsafe.Pointer(unsafe.StringData(s))
	n := len(s)
	for ; n >= 8; n -= 8 {
		h = (h ^ binary.LittleEndian.Uint64(unsafe.Slice((*byte)(p), 8))) * hashPrime
		p = unsafe.Add(p, 8)
	}
	for i := 0; i < n; i++ {
		h = (h ^ uint64(*(*byte)(unsafe.Add(p, i)))) * hashPrime
	}
	return (h ^ uint64(len(s))) * hashPrime
}
