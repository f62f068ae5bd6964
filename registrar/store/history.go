package store

import (
	"slices"
	"sort"
	"strings"
	"sync"
)

// DefaultHistory is how many revisions of changes an Embedded store keeps for deltas.
const DefaultHistory = 100_000

// history is the retained changes for Delta: the changes of the last maxRevs
// revisions, and never more than maxRevs name changes in all (a write of many names
// counts each), so its memory is bounded (~100 bytes per change: ~10 MB at the
// default) whatever the writes look like. Older changes are dropped a whole revision
// at a time; a client behind them gets the full table.
type history struct {
	mu      sync.RWMutex
	entries []histEntry // in revision order; entries[start:] are held
	start   int
	floor   uint64 // every change after floor, up to rev, is held
	rev     uint64 // the revision of the last change appended
	maxRevs int
}

// histEntry is one name changed at one revision. existed says whether the name was in
// the table just before this change, which lets Delta leave out names that came and
// went within the delta.
type histEntry struct {
	rev     uint64
	name    string
	target  string // "" for a removal
	existed bool
}

func newHistory(rev uint64, maxRevs int) *history {
	return &history{floor: rev, rev: rev, maxRevs: maxRevs}
}

// reset drops every change held: the table was replaced at rev (the caller holds mu).
func (h *history) reset(rev uint64) {
	h.entries, h.start, h.floor, h.rev = nil, 0, rev, rev
}

// add appends the changes of revision rev (the caller holds mu).
func (h *history) add(rev uint64, changes []histEntry) {
	h.entries = append(h.entries, changes...)
	h.rev = rev
	h.trim()
}

// trim drops the oldest revisions until at most maxRevs revisions and maxRevs
// entries are held.
func (h *history) trim() {
	for h.start < len(h.entries) && (int(h.rev-h.floor) > h.maxRevs || len(h.entries)-h.start > h.maxRevs) {
		r := h.entries[h.start].rev
		for h.start < len(h.entries) && h.entries[h.start].rev == r {
			h.entries[h.start] = histEntry{}
			h.start++
		}
		h.floor = r
	}
	if h.start == len(h.entries) && int(h.rev-h.floor) > h.maxRevs {
		h.floor = h.rev - uint64(h.maxRevs)
	}
	if h.start > 1024 && h.start > len(h.entries)/2 {
		h.entries = append([]histEntry(nil), h.entries[h.start:]...)
		h.start = 0
	}
}

// delta compacts the changes after `after` (the caller holds mu for reading).
func (h *history) delta(after uint64, maxBytes int) (Delta, bool) {
	if after < h.floor || after >= h.rev {
		return Delta{}, false
	}
	held := h.entries[h.start:]
	i := sort.Search(len(held), func(i int) bool { return held[i].rev > after })
	d := Delta{From: after, Revision: h.rev}
	type state struct {
		target      string
		existedThen bool // in the table at revision after
	}
	last := map[string]*state{}
	order := make([]string, 0, len(held)-i)
	for _, e := range held[i:] {
		st, ok := last[e.name]
		if !ok {
			st = &state{existedThen: e.existed}
			last[e.name] = st
			order = append(order, e.name)
		}
		st.target = e.target
	}
	size := 0
	for _, name := range order {
		st := last[name]
		switch {
		case st.target != "":
			d.Upserts = append(d.Upserts, Route{name, st.target})
			size += EncodedSize(name, st.target)
		case st.existedThen:
			d.Removals = append(d.Removals, name)
			size += len(name) + 3
		}
		if size > maxBytes {
			return Delta{}, false
		}
	}
	slices.SortFunc(d.Upserts, func(a, b Route) int { return strings.Compare(a.Name, b.Name) })
	slices.Sort(d.Removals)
	return d, true
}
