package polling

import (
	"strconv"
	"testing"

	"switchyard/internal/testkit/casstore"
)

const tick = int64(100e6)

func TestLeaseColdStartOneHolder(t *testing.T) {
	st := casstore.New()
	a, b, c := NewLease(RoleRouter, "a", st), NewLease(RoleRouter, "b", st), NewLease(RoleRouter, "c", st)
	now := int64(1e12)
	// All three find no key in the same tick and all "create" it (Envoy ignores cas
	// on a missing key): none polls yet.
	st.Blind = true
	for _, l := range []*Lease{a, b, c} {
		if ev := l.Tick(now); ev != LeaseUnchanged || l.Held() {
			t.Fatalf("%s: %v held %v after the first tick", l.ID(), ev, l.Held())
		}
	}
	// The next tick: only the last writer reads its own id back.
	st.Blind = false
	now += tick
	var holders []string
	for _, l := range []*Lease{a, b, c} {
		if l.Tick(now) == LeaseAcquired {
			holders = append(holders, l.ID())
		}
	}
	if len(holders) != 1 || holders[0] != "c" {
		t.Fatalf("holders %v, want [c]", holders)
	}
	// Many ticks later still exactly one, renewing (the lease never expires).
	for i := 0; i < 500; i++ {
		now += tick
		n := 0
		for _, l := range []*Lease{a, b, c} {
			if ev := l.Tick(now); ev != LeaseUnchanged {
				t.Fatalf("tick %d: %s %v", i, l.ID(), ev)
			}
			if l.Held() {
				n++
			}
		}
		if n != 1 || !c.Held() {
			t.Fatalf("tick %d: %d holders", i, n)
		}
	}
}

func TestLeaseTakeoverAfterHolderDies(t *testing.T) {
	st := casstore.New()
	a, b := NewLease(RoleRouter, "a", st), NewLease(RoleRouter, "b", st)
	now := int64(1e12)
	a.Tick(now)
	now += tick
	if a.Tick(now) != LeaseAcquired {
		t.Fatal("a did not acquire")
	}
	b.Tick(now)
	diedAt := now // a stops ticking: its VM died
	for b.Tick(now) != LeaseAcquired {
		now += tick
		if now-diedAt > LeaseNanos+tick {
			t.Fatalf("b had not taken the lease %d ms after the holder died", (now-diedAt)/1e6)
		}
	}
	if now-diedAt < LeaseNanos/2 {
		t.Fatalf("b took a live lease after %d ms", (now-diedAt)/1e6)
	}
	// a comes back (it was only stalled): it reads b's id and stops.
	if ev := a.Tick(now + tick); ev != LeaseLost || a.Held() {
		t.Fatalf("stalled holder: %v held %v, want lost", ev, a.Held())
	}
}

// A holder that is done (a plugin update) releases the lease: another router takes
// it at its next tick, not when it would have expired.
func TestLeaseReleasedWhenDone(t *testing.T) {
	for _, role := range []string{RoleRouter, RoleSync} {
		st := casstore.New()
		a, b := NewLease(role, "a", st), NewLease(RoleRouter, "b", st)
		now := int64(1e12)
		a.Start(now)
		a.Tick(now)
		now += tick
		if a.Tick(now); !a.Held() {
			t.Fatalf("%s a does not hold the lease", role)
		}
		b.Tick(now)
		a.Release()
		if a.Held() || a.Renew(now) {
			t.Errorf("%s a still holds the lease after releasing it", role)
		}
		now += tick
		if ev := b.Tick(now); ev != LeaseAcquired {
			t.Errorf("%s: the tick after the release: %v, want b to take the lease at once", role, ev)
		}
	}
	// A release never undoes another VM's holding.
	st := casstore.New()
	a, b := NewLease(RoleRouter, "a", st), NewLease(RoleSync, "b", st)
	now := int64(1e12)
	a.Tick(now)
	a.Tick(now + tick)
	b.Start(now + tick) // the sync takes it over before a's next tick
	a.Release()
	if v, _, _ := st.GetCAS(LeaseKey); string(v) != (LeaseValue{RoleSync, "b", now + tick + LeaseNanos, false}).String() {
		t.Errorf("a's release changed the sync's lease to %q", v)
	}
}

func TestLeaseExpiredContention(t *testing.T) {
	// Two routers read the same expired lease; the cas makes one write fail.
	st := casstore.New()
	st.SetCAS(LeaseKey, LeaseValue{RoleRouter, "dead", 5, false}.String(), 0)
	a, b := NewLease(RoleRouter, "a", st), NewLease(RoleRouter, "b", st)
	_, cas, _ := st.GetCAS(LeaseKey)
	// a wins the race first...
	if a.Tick(100) != LeaseAcquired {
		t.Fatal("a did not take the expired lease")
	}
	// ...and b's write with the stale cas it would have read fails.
	if err := st.SetCAS(LeaseKey, "router b 999", cas); err != casstore.ErrMismatch {
		t.Fatalf("write with a stale cas: %v", err)
	}
	if b.Tick(100) != LeaseUnchanged || b.Held() {
		t.Fatal("b took a live lease")
	}
}

func TestLeaseRenewsAndMalformed(t *testing.T) {
	st := casstore.New()
	st.SetCAS(LeaseKey, "garbage", 0)
	a := NewLease(RoleRouter, "a", st)
	if a.Tick(1000) != LeaseAcquired { // a malformed key counts as expired; it exists, so cas holds
		t.Fatal("a did not replace a malformed lease")
	}
	first := a.Current.Expires
	now := int64(1000) + LeaseNanos/2 + 1
	if a.Tick(now) != LeaseUnchanged || a.Current.Expires <= first {
		t.Fatalf("not renewed past half the lease: expires %d (was %d)", a.Current.Expires, first)
	}
	if !a.Renew(now) {
		t.Fatal("Renew false for the holder")
	}
	taken := LeaseValue{RoleRouter, "b", now + LeaseNanos, false}.String()
	st.SetCAS(LeaseKey, taken, 0)
	if a.Renew(now + 1) {
		t.Fatal("Renew true after another VM took the lease")
	}
	if v, _, _ := st.GetCAS(LeaseKey); string(v) != taken {
		t.Fatalf("Renew by a VM that lost the lease wrote %q over %q", v, taken)
	}
}

// TestLeaseRenewedByAnAnswer: a holder whose poll answer arrives just before its lease
// runs out (the ticks between were late: a long callback) renews it in the callback,
// so another router's tick during the rest of that callback finds it live. Without
// the renewal the lease would be expired then and taken.
func TestLeaseRenewedByAnAnswer(t *testing.T) {
	for _, role := range []string{RoleRouter, RoleSync} {
		st := casstore.New()
		a := NewLease(role, "a", st)
		now := int64(1e12)
		a.Start(now)
		a.Tick(now)
		a.Tick(now + tick)
		if !a.Held() {
			t.Fatalf("%s: a does not hold the lease", role)
		}
		now += LeaseNanos - tick // the answer arrives a tick before expiry
		if !a.Renew(now) {
			t.Fatalf("%s: Renew false for the holder", role)
		}
		b := NewLease(RoleRouter, "b", st)
		later := now + LeaseNanos/2 // the callback runs on past the old expiry
		if b.Tick(later) != LeaseUnchanged || b.Tick(later+tick) != LeaseUnchanged || b.Held() {
			t.Fatalf("%s: another router took the lease renewed by the answer: %+v", role, b.Current)
		}
		if b.Current.Holder != "a" || b.Current.Expires != now+LeaseNanos {
			t.Fatalf("%s: the lease reads %+v, want a's expiring at %d", role, b.Current, now+LeaseNanos)
		}
	}
}

func TestLeaseSyncHasPriority(t *testing.T) {
	st := casstore.New()
	r := NewLease(RoleRouter, "r", st)
	now := int64(1e12)
	r.Tick(now)
	now += tick
	if r.Tick(now) != LeaseAcquired {
		t.Fatal("router did not acquire")
	}
	s := NewLease(RoleSync, "s", st)
	s.Start(now)
	if !s.Held() {
		t.Fatal("the sync does not hold the lease after Start")
	}
	now += tick
	if r.Tick(now) != LeaseLost {
		t.Fatal("the router kept polling beside a live sync")
	}
	// Routers never take a live sync's lease, however long it runs.
	for i := 0; i < 3*int(LeaseNanos/tick); i++ {
		now += tick
		s.Tick(now)
		if r.Tick(now) != LeaseUnchanged || r.Held() {
			t.Fatalf("tick %d: the router took the sync's lease", i)
		}
	}
	// The sync's VM dies: a router takes over within the lease plus one tick.
	diedAt := now
	for r.Tick(now) != LeaseAcquired {
		now += tick
		if now-diedAt > LeaseNanos+tick {
			t.Fatal("no router took over from the dead sync")
		}
	}
	if v, ok := ParseLease([]byte(r.Current.String())); !ok || v.Role != RoleRouter || v.Holder != "r" {
		t.Fatalf("lease after takeover: %+v", r.Current)
	}
}

func TestParseLease(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"router abc 123", true}, {"sync abc 123", true}, {"other abc 123", false},
		{"router abc", false}, {"router abc x", false}, {"", false}, {"router  abc 1 2", false},
		{"router abc m123", true}, {"router abc m", false}, {"router abc m-5", false}, {"router abc mm1", false},
	} {
		if _, ok := ParseLease([]byte(tc.in)); ok != tc.ok {
			t.Errorf("ParseLease(%q) ok %v, want %v", tc.in, ok, tc.ok)
		}
	}
}

// A lease written with a wall-clock expiry (no "m" marker) cannot be compared with the
// monotonic clock: a router waits until it has stayed unchanged for LeaseNanos of its
// own clock, whatever its expiry says, and takes a released one (expires 0) at once.
func TestLeaseWallClockValue(t *testing.T) {
	st := casstore.New()
	// An expiry far ahead of the reader's clock (wall ns against monotonic ns).
	st.SetCAS(LeaseKey, "router old 1800000000000000000", 0)
	r := NewLease(RoleRouter, "r", st)
	now := int64(5e9)
	// The old holder renews once in the first half: the wait starts over.
	for i := 0; now < 5e9+LeaseNanos/2; i++ {
		if ev := r.Tick(now); ev != LeaseUnchanged || r.Held() {
			t.Fatalf("took a live wall-clock lease at %d", now)
		}
		now += tick
	}
	st.SetCAS(LeaseKey, "router old 1800000000005000000", 0)
	renewed := now
	for ; now < renewed+LeaseNanos; now += tick {
		if r.Tick(now); r.Held() {
			t.Fatalf("took a wall-clock lease %d ns after its last renewal, before LeaseNanos", now-renewed)
		}
	}
	// Unchanged for LeaseNanos (and one tick): expired.
	if ev := r.Tick(now + tick); ev != LeaseAcquired {
		t.Fatalf("a wall-clock lease unchanged for LeaseNanos was not taken: %v", ev)
	}
	if v, _, _ := st.GetCAS(LeaseKey); string(v) != "router r m"+strconv.FormatInt(now+tick+LeaseNanos, 10) {
		t.Fatalf("taken lease = %q, want a monotonic expiry", v)
	}
	// Released by an older filter: taken at once.
	st2 := casstore.New()
	st2.SetCAS(LeaseKey, "router old 0", 0)
	if ev := NewLease(RoleRouter, "r", st2).Tick(1); ev != LeaseAcquired {
		t.Fatalf("a released wall-clock lease was not taken at once: %v", ev)
	}
}
