package main

import (
	"errors"
	"unsafe"

	"switchyard/filter/polling"
	"switchyard/internal/abi"
)

// sharedStore is the one path to proxy-wasm shared data (kept per vm_id, seen by the
// sync and every router VM): the router's lookups (view), the table layout's reads
// and writes (polling.Store: Get, Set) and the poll lease's and age watch's
// compare-and-swap (polling.CASStore: GetCAS, SetCAS) all go through it, and through
// getSharedData and setSharedData (abi_wasm.go) below it.
type sharedStore struct{}

// view reads a value into the request arena: valid until the next request, and free
// of allocation, for the router's request path.
func (sharedStore) view(key string) (string, bool) {
	v, _, st := getSharedData(key, true)
	return v, st == abi.StatusOK
}

// Get reads a value into memory of its own, which the caller may keep.
func (s sharedStore) Get(key string) ([]byte, bool) {
	v, _, ok := s.GetCAS(key)
	return v, ok
}

// Peek reads a value into the request arena, emptied first: valid until the next Peek
// or request. The poller calls it in its own callbacks (tick, http-call answer), never
// inside a request's, so no request's values are in the arena then.
func (s sharedStore) Peek(key string) (string, bool) {
	resetArena()
	return s.view(key)
}

// Set writes a value unconditionally (cas 0).
func (s sharedStore) Set(key, value string) error { return s.SetCAS(key, value, 0) }

func (sharedStore) GetCAS(key string) ([]byte, uint32, bool) {
	v, cas, st := getSharedData(key, false)
	if st != abi.StatusOK {
		return nil, 0, false
	}
	return unsafe.Slice(unsafe.StringData(v), len(v)), cas, true
}

func (sharedStore) SetCAS(key, value string, cas uint32) error {
	switch st := setSharedData(key, value, cas); st {
	case abi.StatusOK:
		return nil
	case abi.StatusCasMismatch:
		return polling.ErrCasMismatch
	default:
		return errors.New("proxy_set_shared_data of " + key + ": " + st.String())
	}
}
