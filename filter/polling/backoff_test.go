package polling

import "testing"

func TestBackoffSequence(t *testing.T) {
	// Base delays double from 1 s and stop at 30 s; each is shortened by 0–25 %.
	bases := []int64{1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000}
	for seed := uint64(1); seed <= 50; seed++ {
		b := NewBackoff(seed * 7919)
		for i, base := range bases {
			d := b.Next()
			if d > base || d < base-base/4 {
				t.Fatalf("seed %d, failure %d: delay %d ms, want within [%d, %d]", seed, i+1, d, base-base/4, base)
			}
		}
		if b.Failures() != len(bases) {
			t.Fatalf("Failures() = %d, want %d", b.Failures(), len(bases))
		}
		b.Reset()
		if d := b.Next(); d > 1000 || d < 750 {
			t.Fatalf("after Reset the delay is %d ms, want 750–1000", d)
		}
	}
}

func TestBackoffJitterSpreads(t *testing.T) {
	seen := map[int64]bool{}
	for seed := uint64(1); seed <= 20; seed++ {
		seen[NewBackoff(seed*104729).Next()] = true
	}
	if len(seen) < 10 {
		t.Errorf("20 proxies got only %d distinct first delays; the jitter does not spread them", len(seen))
	}
}

func TestBackoffZeroSeed(t *testing.T) {
	b := NewBackoff(0) // a host clock of 0 must not leave xorshift stuck at 0
	a, c := b.Next(), b.Next()
	if a == 1000 && c == 2000 {
		t.Errorf("delays %d, %d carry no jitter with seed 0", a, c)
	}
}
