// Package health is the router's passive health check, with nginx's semantics and
// names: a failure (an upstream connection failure, a reset before the response or an
// upstream timeout, as the host reports them: Failed) counts against the target it
// happened on; max_fails failures within fail_timeout eject the target for
// fail_timeout; then it is tried again. max_fails 0 turns the check off.
//
// The state is per proxy: every router VM of the proxy shares it through one
// shared-data value (contract.HealthKey), written with compare-and-swap when a VM sees
// a failure and read once per tick by the others. Each VM keeps a view of the targets
// ejected now (Ejected), which the router consults per request without a host call.
//
// Pure Go on a Store: it builds for wasip1 and natively, arms no timer, and the
// request path (Ejected, Len) allocates nothing. Failure and Tick run on the response
// path of a failed request and on the tick, and may allocate.
package health

import (
	"strconv"
	"strings"

	"switchyard/internal/contract"
)

// Settings are the plugin configuration's max_fails and fail_timeout.
type Settings struct {
	MaxFails    int   // failures within FailTimeout that eject a target; 0: off
	FailTimeout int64 // nanoseconds: the window failures count in, and how long an ejection lasts
}

// Store is shared data with its cas, as proxy-wasm offers it.
type Store interface {
	GetCAS(key string) (value []byte, cas uint32, ok bool)
	SetCAS(key, value string, cas uint32) error
}

// MaxEntries bounds the shared value: beyond it the entries whose window started
// first are dropped, so a proxy that sees many failing targets keeps the newest.
const MaxEntries = 1024

// casAttempts bounds the read-modify-write of a failure when other VMs keep writing
// (SetCAS fails when another VM wrote since the read; any error is tried again).
const casAttempts = 8

// entry is one target's record in the shared value.
type entry struct {
	target string
	fails  int   // failures counted in the window that started at since
	since  int64 // host time (ns) the window started
	until  int64 // host time (ns) the ejection ends; 0 or past: not ejected
}

// Tracker is one router VM's side of the passive health check.
type Tracker struct {
	s           Settings
	store       Store
	defaultPort string

	seen    bool   // a value has been read
	cas     uint32 // cas of the value last read (0: read again on the next tick)
	ejected []string
	until   []int64
}

// New gives a VM's Tracker. defaultPort is the router's default_port: a target
// registered without a port is ejected under the authority the router sent it to.
func New(s Settings, store Store, defaultPort int) *Tracker {
	return &Tracker{s: s, store: store, defaultPort: strconv.Itoa(defaultPort)}
}

// On reports whether the passive health check is on (max_fails > 0).
func (t *Tracker) On() bool { return t.s.MaxFails > 0 }

// Len is the number of targets this VM sees ejected; 0 lets the router skip the check.
func (t *Tracker) Len() int { return len(t.ejected) }

// Ejected reports whether the target address (as written in a target set) is ejected:
// the same address, or the address without a port when the ejected authority is it
// plus the default port.
func (t *Tracker) Ejected(address string) bool {
	for _, e := range t.ejected {
		if e == address {
			return true
		}
		if len(e) == len(address)+1+len(t.defaultPort) && strings.HasPrefix(e, address) &&
			e[len(address)] == ':' && e[len(address)+1:] == t.defaultPort && !hasPort(address) {
			return true
		}
	}
	return false
}

// hasPort works on validated addresses: host, host:port, [v6] or [v6]:port.
func hasPort(a string) bool {
	if a != "" && a[0] == '[' {
		return a[len(a)-1] != ']'
	}
	return strings.IndexByte(a, ':') >= 0
}

// Tick learns what the other VMs recorded (one shared-data read, parsed only when its
// cas changed) and lets ejections that have run their fail_timeout end.
func (t *Tracker) Tick(now int64) {
	if !t.On() {
		return
	}
	v, cas, ok := t.store.GetCAS(contract.HealthKey)
	if !ok {
		t.seen, t.cas = true, 0
		t.ejected, t.until = t.ejected[:0], t.until[:0]
		return
	}
	if !t.seen || cas != t.cas {
		t.seen, t.cas = true, cas
		t.learn(parse(string(v)), now)
		return
	}
	t.expire(now)
}

// learn replaces the view with the entries ejected at now.
func (t *Tracker) learn(es []entry, now int64) {
	t.ejected, t.until = t.ejected[:0], t.until[:0]
	for _, e := range es {
		if e.until > now {
			t.ejected = append(t.ejected, e.target)
			t.until = append(t.until, e.until)
		}
	}
}

// expire drops the ejections that ended by now, keeping the order.
func (t *Tracker) expire(now int64) {
	n := 0
	for i := range t.ejected {
		if t.until[i] > now {
			t.ejected[n], t.until[n] = t.ejected[i], t.until[i]
			n++
		}
	}
	t.ejected, t.until = t.ejected[:n], t.until[:n]
}

// Failure counts a failure of target (the authority the request was sent to) at now
// in the shared value. It reports whether this failure ejected the target (for the
// ejections counter); a failure of a target already ejected counts for nothing, as
// in nginx. The VM's view is updated at once; err is set when the shared value could
// not be written (the VM still skips the target itself).
func (t *Tracker) Failure(target string, now int64) (ejected bool, err error) {
	if !t.On() || target == "" {
		return false, nil
	}
	for attempt := 0; attempt < casAttempts; attempt++ {
		v, cas, _ := t.store.GetCAS(contract.HealthKey)
		es := parse(string(v))
		es, ejected = countFailure(es, target, now, t.s)
		err = t.store.SetCAS(contract.HealthKey, format(es), cas)
		if err == nil {
			t.seen, t.cas = true, 0 // our own write has a cas we do not know: read it next tick
			t.learn(es, now)
			return ejected, nil
		}
	}
	// Shared data refused the write: skip the target in this VM at least.
	if ejected {
		t.ejected = append(t.ejected, target)
		t.until = append(t.until, now+t.s.FailTimeout)
	}
	return ejected, err
}

// countFailure applies one failure of target at now to es: a window older than
// fail_timeout starts afresh; max_fails failures in the window eject the target for
// fail_timeout. Entries with nothing left to say (window over, not ejected) are
// dropped, and at most MaxEntries are kept.
func countFailure(es []entry, target string, now int64, s Settings) ([]entry, bool) {
	kept := es[:0]
	found := -1
	for _, e := range es {
		if e.target != target && e.until <= now && now-e.since > s.FailTimeout {
			continue
		}
		if e.target == target {
			found = len(kept)
		}
		kept = append(kept, e)
	}
	es = kept
	if found < 0 {
		es = append(es, entry{target: target, since: now})
		found = len(es) - 1
	}
	e := &es[found]
	if e.until > now {
		return trim(es), false // already ejected
	}
	if now-e.since > s.FailTimeout || e.fails == 0 {
		e.fails, e.since = 0, now
	}
	e.fails++
	ejected := false
	if e.fails >= s.MaxFails {
		e.until, e.fails, e.since = now+s.FailTimeout, 0, now
		ejected = true
	}
	return trim(es), ejected
}

// trim keeps the MaxEntries entries whose windows started last.
func trim(es []entry) []entry {
	for len(es) > MaxEntries {
		oldest := 0
		for i := range es {
			if es[i].since < es[oldest].since {
				oldest = i
			}
		}
		es = append(es[:oldest], es[oldest+1:]...)
	}
	return es
}

// The shared value: one line per target, "target fails since until", times in host
// nanoseconds. Targets are validated addresses, so they hold no space or newline.

func format(es []entry) string {
	var b []byte
	for _, e := range es {
		b = append(b, e.target...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(e.fails), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, e.since, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, e.until, 10)
		b = append(b, '\n')
	}
	return string(b)
}

// parse reads the shared value; a line that does not read is skipped (the value is
// only ever written by format, but shared data is open to every plugin of the VM id).
func parse(v string) []entry {
	var es []entry
	for v != "" {
		line := v
		if i := strings.IndexByte(v, '\n'); i >= 0 {
			line, v = v[:i], v[i+1:]
		} else {
			v = ""
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		fails, err1 := strconv.Atoi(f[1])
		since, err2 := strconv.ParseInt(f[2], 10, 64)
		until, err3 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || fails < 0 {
			continue
		}
		es = append(es, entry{target: f[0], fails: fails, since: since, until: until})
	}
	return es
}
