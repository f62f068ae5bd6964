package wasmhost

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestSharedSpaceAgainstMap runs random writes and reads (keys from a small and a
// large range, so both overwrites and growth happen) against a Go map as the model.
func TestSharedSpaceAgainstMap(t *testing.T) {
	s := newSharedSpace()
	model := map[string]string{}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200_000 {
		n := r.IntN(50_000)
		if i%3 == 0 {
			n = r.IntN(40) // a few hot keys, written again and again
		}
		k := "switchyard/a/route/n" + strconv.Itoa(n)
		if r.IntN(2) == 0 {
			v := strconv.Itoa(i)
			s.set([]byte(k), []byte(v), uint32(i+1))
			model[k] = v
			continue
		}
		e, ok := s.get([]byte(k))
		want, wok := model[k]
		if ok != wok || ok && string(e.value) != want {
			t.Fatalf("get %s: %q %v, want %q %v", k, e.value, ok, want, wok)
		}
	}
	if s.len() != len(model) {
		t.Fatalf("%d keys, want %d", s.len(), len(model))
	}
	for k, want := range model {
		if e, ok := s.get([]byte(k)); !ok || string(e.value) != want || e.key != k {
			t.Fatalf("after the run, %s: %q %v, want %q", k, e.value, ok, want)
		}
	}
	if got := len(s.slots); got&(got-1) != 0 || 4*s.len() > 3*got {
		t.Fatalf("%d slots for %d keys: not a power of two, or fuller than 3/4", got, s.len())
	}
}

func TestSharedDataOverhead(t *testing.T) {
	h := New(Options{})
	defer h.Close()
	if n := h.SharedDataOverhead("none"); n != 0 {
		t.Fatalf("overhead of a store that does not exist: %d", n)
	}
	for i := range 1000 {
		h.SetSharedData("v", "k"+strconv.Itoa(i), []byte("x"))
	}
	// 1000 keys: at least 2048 slots of 16 bytes and 1000 entries of 48.
	if n := h.SharedDataOverhead("v"); n < 2048*16+1000*48 || n > 4*(2048*16+1000*48) {
		t.Fatalf("overhead of 1000 keys: %d bytes", n)
	}
}
