package polling

// Backoff gives the delays between failed polls: 1 s, 2 s, 4 s, ... up to 30 s, each
// shortened by a random 0–25 % so that many proxies that lost the registrar at the
// same moment do not come back in step. It is plain arithmetic on milliseconds: the
// sync compares the host's clock against the due time on each tick, and no Go timer
// is ever armed (one armed Go timer makes the runtime call poll_oneoff at every GC,
// which crashes Envoy 1.33–1.37).
type Backoff struct {
	MinMillis, MaxMillis int64
	failures             int
	rng                  uint64
}

// NewBackoff returns the poller's backoff, 1 s to 30 s, with jitter seeded by seed
// (the host's clock in nanoseconds is good enough: it only spreads proxies apart).
func NewBackoff(seed uint64) *Backoff {
	return &Backoff{MinMillis: 1000, MaxMillis: 30000, rng: seed | 1}
}

// Next records a failure and gives the delay before the next attempt.
func (b *Backoff) Next() int64 {
	base := b.MinMillis
	for i := 0; i < b.failures && base < b.MaxMillis; i++ {
		base *= 2
	}
	if base > b.MaxMillis {
		base = b.MaxMillis
	}
	b.failures++
	return base - int64(b.random()%uint64(base/4+1))
}

// Failures is the number of failures since the last Reset.
func (b *Backoff) Failures() int { return b.failures }

// Reset starts the sequence again after a success.
func (b *Backoff) Reset() { b.failures = 0 }

// random is xorshift64: cheap, allocation-free and touching no runtime timer.
func (b *Backoff) random() uint64 {
	x := b.rng
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	b.rng = x
	return x
}
