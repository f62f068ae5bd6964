package server

import (
	"bytes"
	"container/list"
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"switchyard/internal/registrarapi"
	"switchyard/registrar/store"
)

// The proxy registry: who has polled this registrar with sync protocol version 2, and
// which revision each said it has applied (the after of its poll). It lives in the
// server, not in the store, so it works the same over every store; each replica knows
// the proxies that polled it (with several replicas, each answers for its own).
//
// Bounds (what a flood of fake ids can cost):
//   - at most maxProxies entries (default DefaultMaxProxies), so memory stays under
//     about 1.3 KB per proxy with the longest ids: 12 MiB at the default
//     (BenchmarkProxyRegistryFlood). A new id beyond that takes the slot of the entry
//     silent longest only when that one is gone (registrar_proxies_evicted_total
//     counts them); while every entry is live, the new id is not recorded
//     (registrar_proxies_refused_total): made-up ids never push out proxies that poll;
//   - an entry not heard from for ProxyForget (24 h) is forgotten.
//
// What is recorded is only what the registrar can vouch for: a poll refused (400,
// 401) is not recorded at all, and a poll whose after is beyond the revision this
// registrar holds in the same lineage (a revision it never served) is recorded at
// revision 0, so a made-up after never shows a proxy current nor ends a wait=applied.
//
// Identity values (proxy, cluster, version) never make a poll fail: a value with
// bytes outside visible ASCII, or with % " ' < > & \ or `, is recorded with those
// bytes percent-escaped (%20 for a space), and one longer than maxIdentity bytes
// (after escaping) is cut and ends in "~" and a 16-digit hash of the whole value, so
// two long ids stay apart. Only that recorded form is shown anywhere (API, page,
// logs). A poll without proxy= is recorded as "unnamed@<the address it came from>"
// (see unnamedID).

// Proxy states in GET /api/proxies and /metrics.
const (
	stateCurrent = "current"
	stateBehind  = "behind"
	stateGone    = "gone"
)

const (
	// DefaultMaxProxies bounds the registry.
	DefaultMaxProxies = 10_000
	// ProxyForget is how long a silent proxy stays listed (as gone).
	ProxyForget = 24 * time.Hour
	// goneGrace is added to two poll waits before a silent proxy counts as gone:
	// a proxy that polls without waiting (wait=0) still needs a moment between polls.
	goneGrace = 5 * time.Second
	// revisionTimes is how many revisions the registry remembers the time of (to say
	// how long a proxy has been behind); older ones count from the oldest remembered.
	revisionTimes = 4096
)

// proxyEntry is what the registry holds of one proxy. Strings are the recorded
// (escaped) forms.
type proxyEntry struct {
	id, cluster, version string
	after                uint64
	lineage              string
	wait                 time.Duration
	firstSeen, lastPoll  time.Time
	lineageSince         time.Time // first poll of the current run with this lineage
	elem                 *list.Element
}

type proxyRegistry struct {
	mu      sync.Mutex
	byID    map[string]*proxyEntry
	order   *list.List // of *proxyEntry, most recent poll at the front
	max     int
	forget  time.Duration
	grace   time.Duration // goneGrace; shorter in tests
	replica string
	now     func() time.Time
	started time.Time
	// waiters are the writes waiting for their revision to be applied (waitApplied);
	// every change to an entry updates their counts, and wakes one only when its
	// count says it may be done.
	waiters map[*applyWaiter]struct{}
	scans   atomic.Uint64 // how many times a waiter has looked at every entry
	evicted uint64
	refused uint64
	escaped uint64
	unnamed uint64

	revs []revisionTime // ascending, at most revisionTimes
}

type revisionTime struct {
	rev uint64
	at  time.Time
}

func newProxyRegistry(max int, forget time.Duration, now func() time.Time) *proxyRegistry {
	if max <= 0 {
		max = DefaultMaxProxies
	}
	if forget <= 0 {
		forget = ProxyForget
	}
	if now == nil {
		now = time.Now
	}
	return &proxyRegistry{byID: map[string]*proxyEntry{}, order: list.New(), max: max, forget: forget, grace: goneGrace, now: now, started: now(),
		waiters: map[*applyWaiter]struct{}{}}
}

// setReplica names this registrar replica in what the registry reports.
func (r *proxyRegistry) setReplica(name string) {
	r.mu.Lock()
	r.replica = name
	r.mu.Unlock()
}

func (r *proxyRegistry) replicaName() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.replica
}

// report records one version-2 poll.
func (r *proxyRegistry) report(req SyncRequest) {
	unnamed := req.Proxy == ""
	if unnamed {
		req.Proxy = unnamedID(req.Remote)
	}
	id, e1 := recordedIdentity(req.Proxy)
	cluster, e2 := recordedIdentity(req.Cluster)
	version, e3 := recordedIdentity(req.Version)
	lineage, _ := recordedIdentity(req.Lineage) // a real one is hex, kept as it is
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if e1 || e2 || e3 {
		r.escaped++
	}
	if unnamed {
		r.unnamed++
	}
	r.forgetSilent(now)
	p := r.byID[id]
	if p == nil {
		for len(r.byID) >= r.max {
			oldest := r.order.Back().Value.(*proxyEntry)
			if now.Sub(oldest.lastPoll) <= r.goneAfter(oldest.wait) {
				r.refused++ // every entry is live: the new id gets no slot
				return
			}
			r.evict(oldest)
			r.evicted++
		}
		p = &proxyEntry{id: id, firstSeen: now, lineageSince: now}
		p.elem = r.order.PushFront(p)
		r.byID[id] = p
	} else {
		r.order.MoveToFront(p.elem)
		r.tally(p, -1) // counted again below, as it now stands
	}
	p.cluster, p.version, p.lastPoll = cluster, version, now
	if req.HasWait {
		p.wait = req.Wait
	}
	if !req.Paging { // a page request carries no after: the proxy still holds its table
		if lineage != p.lineage {
			p.lineageSince = now
		}
		p.after, p.lineage = req.After, lineage
		if req.Unserved {
			p.after = 0
		}
	}
	r.tally(p, +1)
}

// unnamedID is the id of a proxy that sent no proxy= (Envoy without a node id and no
// proxy_id): "unnamed@" and the address it polls from, so it is still listed and
// waited for. Unnamed proxies behind one address share one entry.
func unnamedID(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil || host == "" {
		host = "unknown"
	}
	return "unnamed@" + host
}

func (r *proxyRegistry) evict(p *proxyEntry) {
	r.tally(p, -1)
	r.order.Remove(p.elem)
	delete(r.byID, p.id)
}

// forgetSilent drops entries silent for longer than forget (the oldest are at the back).
func (r *proxyRegistry) forgetSilent(now time.Time) {
	for e := r.order.Back(); e != nil; e = r.order.Back() {
		p := e.Value.(*proxyEntry)
		if now.Sub(p.lastPoll) <= r.forget {
			return
		}
		r.evict(p)
	}
}

// sawRevision notes when this registrar first held revision rev.
func (r *proxyRegistry) sawRevision(rev uint64, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.revs); n > 0 && r.revs[n-1].rev >= rev {
		return
	}
	if len(r.revs) == revisionTimes {
		r.revs = append(r.revs[:0], r.revs[1:]...)
	}
	r.revs = append(r.revs, revisionTime{rev, at})
}

// heldSince is when the registrar first held a revision above after (the moment a
// proxy at after fell behind), or the oldest time known when that is older.
func (r *proxyRegistry) heldSince(after uint64) time.Time {
	i := sort.Search(len(r.revs), func(i int) bool { return r.revs[i].rev > after })
	switch {
	case i < len(r.revs) && i > 0:
		return r.revs[i].at
	case len(r.revs) > 0:
		return r.revs[0].at
	}
	return r.started
}

// ProxyView and ProxySummary are the shapes GET /api/proxies answers with, declared
// with the rest of the API's wire types in internal/registrarapi.
type (
	ProxyView    = registrarapi.ProxyView
	ProxySummary = registrarapi.ProxySummary
)

// view computes the state of p against revision rev of lineage at now. Holds mu.
func (r *proxyRegistry) view(p *proxyEntry, rev uint64, lineage string, now time.Time) ProxyView {
	v := ProxyView{Proxy: p.id, Cluster: p.cluster, Version: p.version, Revision: p.after, Lineage: p.lineage,
		LastPoll: p.lastPoll.UTC(), SilentSeconds: seconds(now.Sub(p.lastPoll)), WaitSeconds: p.wait.Seconds(),
		FirstSeen: p.firstSeen.UTC(), Replica: r.replica}
	switch {
	case now.Sub(p.lastPoll) > r.goneAfter(p.wait):
		v.State = stateGone
	case p.lineage == lineage && p.after >= rev:
		v.State = stateCurrent
	default:
		v.State = stateBehind
	}
	if p.lineage == lineage && p.after >= rev {
		return v
	}
	since := p.lineageSince
	if p.lineage == lineage {
		v.RevisionsBehind = rev - p.after
		if h := r.heldSince(p.after); h.After(p.firstSeen) {
			since = h
		} else {
			since = p.firstSeen
		}
	} else {
		v.RevisionsBehind = rev
	}
	v.BehindSeconds = seconds(now.Sub(since))
	return v
}

// goneAfter is how long a proxy that polls with wait may be silent before it is gone.
func (r *proxyRegistry) goneAfter(wait time.Duration) time.Duration { return 2*wait + r.grace }

// seconds rounds to milliseconds, never below zero.
func seconds(d time.Duration) float64 {
	return float64(max(d, 0).Milliseconds()) / 1000
}

// list returns every proxy (sorted by id) and the counts, against revision rev of lineage.
func (r *proxyRegistry) list(rev uint64, lineage string) ([]ProxyView, ProxySummary) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forgetSilent(now)
	out := make([]ProxyView, 0, len(r.byID))
	var s ProxySummary
	for _, p := range r.byID {
		v := r.view(p, rev, lineage, now)
		out = append(out, v)
		count(&s, v.State)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Proxy < out[j].Proxy })
	return out, s
}

// count adds one proxy in state to s.
func count(s *ProxySummary, state string) {
	s.Proxies++
	switch state {
	case stateCurrent:
		s.Current++
	case stateBehind:
		s.Behind++
	case stateGone:
		s.Gone++
	}
}

// Applied is the outcome of waiting for a revision to be applied.
type Applied struct {
	Applied bool
	// Proxies is how many proxies counted (not gone) when the wait ended.
	Proxies int
	// Pending are the first maxPendingShown proxies by id (not gone) that have not
	// applied it, when Applied is false; PendingCount is how many there are in all.
	Pending      []ProxyView
	PendingCount int
}

// maxPendingShown bounds the pending list of a wait=applied answer.
const maxPendingShown = 100

// applyWaiter is one waitApplied: the revision and lineage it waits for, and counts
// of the entries that have not applied them. pending counts every such entry; gone
// is how many of them were gone at the waiter's last look. Reports and evictions
// keep pending exact; gone only changes at a look, so pending-gone can only
// underestimate the live ones left, and a wake at zero is checked by a look.
type applyWaiter struct {
	rev           uint64
	lineage       string
	pending, gone int
	wake          chan struct{} // capacity 1: a wake sent while it is not asleep is kept
}

// behind: p has not applied w's revision.
func (w *applyWaiter) behind(p *proxyEntry) bool { return p.lineage != w.lineage || p.after < w.rev }

// tally adds d (+1 or -1) to the pending count of every waiter p is behind for, and
// wakes a waiter whose count may have reached zero. Holds mu. Its cost is the number
// of waiting writes, not of proxies.
func (r *proxyRegistry) tally(p *proxyEntry, d int) {
	for w := range r.waiters {
		if !w.behind(p) {
			continue
		}
		w.pending += d
		if d < 0 && w.pending-w.gone <= 0 {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
}

// waiting is how many writes wait for their revision to be applied.
func (r *proxyRegistry) waiting() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.waiters)
}

// waitApplied waits until every proxy that is not gone reports having applied rev of
// lineage (after >= rev, same lineage), until timeout, or until ctx ends. It looks at
// every proxy when it starts, when the counts kept by reports (tally) say it may be
// done, and at the moment the next pending proxy would turn gone: no polling, and a
// report costs the waiter nothing unless it can end the wait.
func (r *proxyRegistry) waitApplied(ctx context.Context, rev uint64, lineage string, timeout time.Duration) Applied {
	deadline := r.now().Add(timeout)
	w := &applyWaiter{rev: rev, lineage: lineage, wake: make(chan struct{}, 1)}
	r.mu.Lock()
	r.waiters[w] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.waiters, w)
		r.mu.Unlock()
	}()
	for {
		now := r.now()
		r.mu.Lock()
		r.forgetSilent(now)
		r.scans.Add(1)
		var res Applied
		var nextGone time.Time
		w.pending, w.gone = 0, 0
		for _, p := range r.byID {
			gone := now.Sub(p.lastPoll) > r.goneAfter(p.wait)
			behind := w.behind(p)
			if behind {
				w.pending++
			}
			if gone {
				if behind {
					w.gone++
				}
				continue
			}
			res.Proxies++
			if !behind {
				continue
			}
			res.PendingCount++
			if g := p.lastPoll.Add(r.goneAfter(p.wait)); nextGone.IsZero() || g.Before(nextGone) {
				nextGone = g
			}
		}
		if res.PendingCount == 0 {
			r.mu.Unlock()
			res.Applied = true
			return res
		}
		if !now.Before(deadline) || ctx.Err() != nil {
			res.Pending = r.pendingViews(w, now)
			r.mu.Unlock()
			return res
		}
		r.mu.Unlock()
		wake := deadline
		if nextGone.Before(wake) {
			wake = nextGone.Add(time.Millisecond) // just past: the proxy then counts as gone
		}
		t := time.NewTimer(wake.Sub(now))
		select {
		case <-w.wake:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
}

// pendingViews are the first maxPendingShown proxies by id, not gone, that w waits
// for. Holds mu.
func (r *proxyRegistry) pendingViews(w *applyWaiter, now time.Time) []ProxyView {
	var ids []string
	for id, p := range r.byID {
		if w.behind(p) && now.Sub(p.lastPoll) <= r.goneAfter(p.wait) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	ids = ids[:min(len(ids), maxPendingShown)]
	out := make([]ProxyView, len(ids))
	for i, id := range ids {
		out[i] = r.view(r.byID[id], w.rev, w.lineage, now)
	}
	return out
}

// followRevisions notes the time of every revision st makes current until stop is
// closed, for BehindSeconds. It runs on its own goroutine; it wakes once per new table.
func (r *proxyRegistry) followRevisions(st store.Store, stop <-chan struct{}) {
	t := st.Current()
	r.sawRevision(t.Revision(), r.now())
	for {
		select {
		case <-t.Changed():
		case <-stop:
			return
		}
		t = st.Current()
		r.sawRevision(t.Revision(), r.now())
	}
}

// counters returns the evictions, refused new ids, escaped reports and unnamed polls
// so far.
func (r *proxyRegistry) counters() (evicted, refused, escaped, unnamed uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.evicted, r.refused, r.escaped, r.unnamed
}

// recordedIdentity is the form an identity value is recorded and shown in (see the
// registry's doc); changed says it differs from v.
func recordedIdentity(v string) (string, bool) {
	safe := len(v) <= maxIdentity
	for i := 0; i < len(v) && safe; i++ {
		safe = identityByteSafe(v[i])
	}
	if safe {
		return v, false
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, 3*len(v))
	for i := 0; i < len(v); i++ {
		if c := v[i]; identityByteSafe(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	if len(b) <= maxIdentity {
		return string(b), true
	}
	cut := maxIdentity - 17 // room for "~" and 16 hex digits
	if i := bytes.LastIndexByte(b[:cut], '%'); i >= cut-2 {
		cut = i // never half an escape
	}
	h := fnv.New64a()
	h.Write([]byte(v))
	return fmt.Sprintf("%s~%016x", b[:cut], h.Sum64()), true
}

// identityByteSafe: visible ASCII that needs no quoting in HTML, JSON, shells or URLs'
// percent-escapes.
func identityByteSafe(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '%', '"', '\'', '<', '>', '&', '\\', '`':
		return false
	}
	return true
}
