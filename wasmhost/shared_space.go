package wasmhost

import (
	"hash/maphash"
	"unsafe"
)

// sharedSpace is one vm_id's shared data: key → value and cas, no delete (ABI 0.2.1
// has none). A full table of 10^6 route keys is written into it in seconds, and a Go
// map of strings costs about 800 ns a new key at that size: its growth hashes every
// key again through its pointer, and the GC scans every key. Here an open-addressing
// index of (hash, position) pairs, which holds no pointer and grows by the hashes it
// keeps, points into a slice of entries in insertion order.
type sharedSpace struct {
	seed    maphash.Seed
	slots   []spaceSlot // power-of-two length, linear probing; pos 0 = empty
	entries []sharedEntry
}

type spaceSlot struct {
	hash uint64
	pos  uint32 // index into entries plus one
}

// sharedEntry is one key. Values are never modified in place: a write stores a new
// slice, so a reader may hold the old one without the lock.
type sharedEntry struct {
	key   string
	value []byte
	cas   uint32
}

func newSharedSpace() *sharedSpace {
	return &sharedSpace{seed: maphash.MakeSeed(), slots: make([]spaceSlot, 16)}
}

// find gives the entry of key, or nil and the slot where it would go.
func (s *sharedSpace) find(key []byte) (*sharedEntry, int, uint64) {
	h := maphash.Bytes(s.seed, key)
	mask := len(s.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		sl := s.slots[i]
		if sl.pos == 0 {
			return nil, i, h
		}
		if sl.hash == h {
			if e := &s.entries[sl.pos-1]; e.key == string(key) {
				return e, i, h
			}
		}
	}
}

// get returns the entry of key; a nil space (a vm_id nothing was written for) has none.
func (s *sharedSpace) get(key []byte) (sharedEntry, bool) {
	if s == nil {
		return sharedEntry{}, false
	}
	if e, _, _ := s.find(key); e != nil {
		return *e, true
	}
	return sharedEntry{}, false
}

// set stores value (which the space keeps: the caller passes a copy) with cas under
// key, adding the key if it is new.
func (s *sharedSpace) set(key []byte, value []byte, cas uint32) {
	e, slot, h := s.find(key)
	if e != nil {
		e.value, e.cas = value, cas
		return
	}
	s.entries = append(s.entries, sharedEntry{key: string(key), value: value, cas: cas})
	s.slots[slot] = spaceSlot{hash: h, pos: uint32(len(s.entries))}
	if 4*len(s.entries) > 3*len(s.slots) {
		s.grow()
	}
}

// grow doubles the index, placing each key by the hash it keeps.
func (s *sharedSpace) grow() {
	slots := make([]spaceSlot, 2*len(s.slots))
	mask := len(slots) - 1
	for _, sl := range s.slots {
		if sl.pos == 0 {
			continue
		}
		i := int(sl.hash) & mask
		for slots[i].pos != 0 {
			i = (i + 1) & mask
		}
		slots[i] = sl
	}
	s.slots = slots
}

// all is every entry, in insertion order (none for a nil space).
func (s *sharedSpace) all() []sharedEntry {
	if s == nil {
		return nil
	}
	return s.entries
}

// overhead is the bytes of the index and the entry table (capacity included; 0 for a
// nil space).
func (s *sharedSpace) overhead() int {
	if s == nil {
		return 0
	}
	return cap(s.slots)*int(unsafe.Sizeof(spaceSlot{})) + cap(s.entries)*int(unsafe.Sizeof(sharedEntry{}))
}

// len is the number of keys.
func (s *sharedSpace) len() int { return len(s.entries) }
