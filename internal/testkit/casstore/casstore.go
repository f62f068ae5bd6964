// Package casstore is one vm_id's proxy-wasm shared data in memory, with Envoy's cas
// rule (proxy-wasm-cpp-host shared_data.cc, as wasmhost keeps it): every write gets a
// new cas; a non-zero cas that differs from the stored one is a mismatch, but only
// when the key exists; cas 0 always writes. For the native tests of what the filter
// builds on cas (the poll lease, passive health), several of its VMs sharing one Store.
package casstore

import "errors"

// ErrMismatch is SetCAS's answer when the cas given is not the stored one.
var ErrMismatch = errors.New("CasMismatch")

// Store is the shared data. Values may be read by the test directly.
type Store struct {
	Values map[string]string
	// Blind makes GetCAS find nothing: every VM read before any wrote (a race).
	Blind bool
	// Reads counts GetCAS calls.
	Reads int
	// Refuse refuses this many writes first, as if another VM wrote in between: the
	// key's cas moves, its value does not.
	Refuse int

	cas  map[string]uint32
	next uint32
}

func New() *Store {
	return &Store{Values: map[string]string{}, cas: map[string]uint32{}}
}

// GetCAS is proxy_get_shared_data: the value and its cas (never 0).
func (s *Store) GetCAS(key string) ([]byte, uint32, bool) {
	s.Reads++
	if s.Blind {
		return nil, 0, false
	}
	v, ok := s.Values[key]
	return []byte(v), s.cas[key], ok
}

// SetCAS is proxy_set_shared_data with cas.
func (s *Store) SetCAS(key, value string, cas uint32) error {
	if s.Refuse > 0 {
		s.Refuse--
		s.next++
		s.cas[key] = s.next
		return ErrMismatch
	}
	if cur, ok := s.cas[key]; ok && cas != 0 && cas != cur {
		return ErrMismatch
	}
	s.next++
	s.Values[key], s.cas[key] = value, s.next
	return nil
}
