package polling

import (
	"errors"
	"strconv"
	"strings"

	"switchyard/internal/contract"
)

// The poll lease: which VM of a proxy (of a vm_id) polls the registrar.
//
// Without a "sync" singleton (router-only mode: Istio and Envoy Gateway insert HTTP
// filters only), every router VM could poll, and N workers would send N long-polls
// and write the same table N times. So exactly one VM holds the lease and polls; the
// others only read the table. The lease is one shared-data key, LeaseKey:
//
//	switchyard/lease → "<role> <holder> m<expires>"
//
// role is "sync" or "router", holder the VM's random id (there is no ABI call for a
// VM's identity; each root draws 64 bits with random_get when it starts), expires the
// time after which anyone may take it, in ns of the host's monotonic clock (WASI
// clock_time_get clock 1: Envoy's steady clock, which only moves forward and is one
// clock for all VMs of the process, as shared data is one store). The wall clock
// (proxy_get_current_time_nanoseconds) is not used: stepped back an hour, it would
// keep a dead holder's lease for that hour. The "m" marks the clock; a value without
// it is an expiry in wall-clock ns, written by a filter of before the marker, and
// cannot be compared with the reader's clock: such a lease counts as live until it
// has stayed unchanged (its holder renews it every half lease) for LeaseNanos of the
// reader's own clock, and as expired at once when released (expires 0).
//
// The rules, checked on every tick (no Go timer):
//
//   - A router takes the lease only when it is absent, unreadable or expired. Over an
//     existing key it writes with the cas it read, so of two routers racing for the
//     same expired lease one write fails (CasMismatch) and only the other holds it.
//   - Envoy ignores cas when the key does not exist (a cold start, or after a reload
//     dropped the vm_id's data): two routers can both "create" it. So a router that
//     created the key holds only a claim; it polls once the next tick reads its own id
//     back (the last writer wins and every other claimant reads the winner).
//   - The holder renews on its tick once less than half the lease remains, with cas,
//     and in the callback of each answer to its poll (Renew: a page of a large table
//     may take a while); a router that reads another holder's id (or fails to renew) has lost it and
//     stops polling: the answer of a poll it still has in flight is dropped.
//   - The sync singleton has priority: it writes the lease unconditionally when it
//     starts and on every renewal, so routers see a live sync and never poll. When its
//     VM dies and is not replaced, the lease expires and a router takes it. (Should
//     router VMs start before the sync and one take the lease, it polls until the
//     sync starts; it reads the sync's id at its next tick and stops, and the answer of
//     its poll in flight is dropped. Both run the same Machine, which adopts what
//     shared data holds, so the table stays whole either way.)
//
// A holder whose VM is done (a plugin update or removal: proxy_on_done) releases the
// lease (Release), and another router takes it at its next tick. A holder whose VM
// dies without that is replaced within LeaseNanos plus one tick (the first tick of
// another router after expiry takes the expired key with cas); from no key at all (a
// cold start) the first poll goes out on the second tick.
const (
	LeaseKey   = contract.LeaseKey
	LeaseNanos = int64(contract.LeaseSeconds) * 1e9
)

// ErrCasMismatch is what a CASStore's SetCAS returns when the key changed since the
// cas was read.
var ErrCasMismatch = errors.New("CasMismatch")

// CASStore is shared data with its cas: GetCAS is proxy_get_shared_data (cas is never
// 0 for a present key), SetCAS proxy_set_shared_data with a cas (0: unconditional).
type CASStore interface {
	GetCAS(key string) (value []byte, cas uint32, ok bool)
	SetCAS(key, value string, cas uint32) error
}

// Lease roles.
const (
	RoleSync   = contract.RootSync
	RoleRouter = contract.RootRouter
)

// LeaseValue is a parsed LeaseKey.
type LeaseValue struct {
	Role, Holder string
	Expires      int64
	// WallClock: the expiry has no "m" marker, so it is in wall-clock ns (a value
	// written by a filter of before the marker), not comparable with the monotonic clock.
	WallClock bool
}

// monotonicMark prefixes an expiry in monotonic-clock ns.
const monotonicMark = "m"

// ParseLease reads a LeaseKey value; ok is false for a malformed one (treated as
// expired, so a garbled key cannot stop the table for good).
func ParseLease(v []byte) (LeaseValue, bool) {
	f := strings.Fields(string(v))
	if len(f) != 3 || (f[0] != RoleSync && f[0] != RoleRouter) || f[1] == "" {
		return LeaseValue{}, false
	}
	exp, wall := strings.CutPrefix(f[2], monotonicMark)
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || n < 0 {
		return LeaseValue{}, false
	}
	return LeaseValue{Role: f[0], Holder: f[1], Expires: n, WallClock: !wall}, true
}

// String is the LeaseKey value; it always carries the monotonic marker.
func (l LeaseValue) String() string {
	return l.Role + " " + l.Holder + " " + monotonicMark + strconv.FormatInt(l.Expires, 10)
}

// LeaseEvent is what a Tick changed.
type LeaseEvent int

const (
	LeaseUnchanged LeaseEvent = iota
	LeaseAcquired             // this VM holds the lease now: start polling
	LeaseLost                 // this VM held it and does no more: stop polling
)

// Lease is one VM's side of the poll lease.
type Lease struct {
	role, id string
	st       CASStore
	held     bool
	claimed  bool // created the absent key: holds it once the next tick reads it back
	// A wall-clock lease (LeaseValue.WallClock): the value last read, and the time
	// this VM first read it; it expires LeaseNanos after that if it stays unchanged.
	wallSeen  string
	wallSince int64
	// Current is what the last Tick read (zero when absent or malformed).
	Current LeaseValue
}

// NewLease gives the lease of a VM of role (RoleSync or RoleRouter) with id (random,
// drawn when the root starts).
func NewLease(role, id string, st CASStore) *Lease {
	return &Lease{role: role, id: id, st: st}
}

// Held reports whether this VM holds the lease (and so polls).
func (l *Lease) Held() bool { return l.held }

// ID is this VM's holder id.
func (l *Lease) ID() string { return l.id }

// Tick applies the rules at now, the host's monotonic clock (ns).
func (l *Lease) Tick(now int64) LeaseEvent {
	v, cas, present := l.st.GetCAS(LeaseKey)
	cur, valid := LeaseValue{}, false
	if present {
		cur, valid = ParseLease(v)
	}
	l.Current = cur
	mine := valid && cur.Holder == l.id
	if l.role == RoleSync {
		return l.tickSync(now, mine, cur)
	}
	if mine {
		l.claimed = false
		if cur.Expires-now < LeaseNanos/2 && !l.write(now, cas) {
			return l.lose()
		}
		if !l.held {
			l.held = true
			return LeaseAcquired
		}
		return LeaseUnchanged
	}
	ev := l.lose()
	if valid && l.live(cur, string(v), now) {
		return ev // another VM holds a live lease
	}
	// Absent, malformed or expired: take it.
	if !present {
		if l.write(now, 0) {
			l.claimed = true
		}
		return ev
	}
	if l.write(now, cas) {
		// cas protected the write over an existing key: no one else took it.
		// (After a LeaseLost in the same tick this is a new term all the same: the
		// glue starts over from shared data, which another holder wrote meanwhile.)
		l.held = true
		return LeaseAcquired
	}
	return ev
}

// live reports whether another VM's lease cur (the value v) has not expired at now.
func (l *Lease) live(cur LeaseValue, v string, now int64) bool {
	if !cur.WallClock {
		l.wallSeen = ""
		return now < cur.Expires
	}
	if cur.Expires == 0 {
		return false // released
	}
	if v != l.wallSeen {
		l.wallSeen, l.wallSince = v, now
	}
	return now-l.wallSince < LeaseNanos
}

// tickSync: the sync holds the lease whatever it reads; it rewrites the key when it
// finds another holder's (a router that took it while the sync was stalled: that
// router reads the sync's id at its next tick and stops) or when half the lease ran.
func (l *Lease) tickSync(now int64, mine bool, cur LeaseValue) LeaseEvent {
	if !mine || cur.Expires-now < LeaseNanos/2 {
		l.write(now, 0)
	}
	if !l.held {
		l.held = true
		return LeaseAcquired
	}
	return LeaseUnchanged
}

// Start is the sync's first write, in on_configure, so that routers starting with it
// see a live sync before their first tick.
func (l *Lease) Start(now int64) {
	if l.role == RoleSync {
		l.write(now, 0)
		l.held = true
	}
}

func (l *Lease) write(now int64, cas uint32) bool {
	v := LeaseValue{Role: l.role, Holder: l.id, Expires: now + LeaseNanos}
	if err := l.st.SetCAS(LeaseKey, v.String(), cas); err != nil {
		return false
	}
	l.Current = v
	return true
}

func (l *Lease) lose() LeaseEvent {
	l.claimed = false
	if l.held {
		l.held = false
		return LeaseLost
	}
	return LeaseUnchanged
}

// Release gives the lease up when the VM is done (proxy_on_done: a plugin update or
// removal), so that another VM takes it at its next tick instead of when it would
// have expired: it writes the key expired, with the cas it read, and only over its
// own holding (a key another VM holds or changed since is left as it is). Polls of
// this VM stop counting as the holder's at once.
func (l *Lease) Release() {
	held, claimed := l.held, l.claimed
	l.held, l.claimed = false, false
	if !held && !claimed {
		return
	}
	cas, mine := l.readOwn()
	if !mine {
		return
	}
	released := LeaseValue{Role: l.role, Holder: l.id, Expires: 0}
	if l.st.SetCAS(LeaseKey, released.String(), cas) == nil {
		l.Current = released
	}
}

// Renew is called as a poll answer arrives, between ticks: it reports whether this VM
// still holds the lease (a router that lost it must not write the table) and, if so,
// writes it again to expire LeaseNanos from now, so that a long callback (a page of a
// full table on a slow machine) cannot outlast it and let a router take it meanwhile.
// The sync writes unconditionally, as on its tick; a router with the cas it read, so
// that a router which took an expired lease meanwhile keeps it.
func (l *Lease) Renew(now int64) bool {
	if !l.held {
		return false
	}
	if l.role == RoleSync {
		l.write(now, 0)
		return true
	}
	cas, mine := l.readOwn()
	return mine && l.write(now, cas)
}

// readOwn reads the key: mine when it holds this VM's id, with the cas to write it over.
func (l *Lease) readOwn() (cas uint32, mine bool) {
	v, cas, ok := l.st.GetCAS(LeaseKey)
	if !ok {
		return 0, false
	}
	cur, valid := ParseLease(v)
	return cas, valid && cur.Holder == l.id
}
