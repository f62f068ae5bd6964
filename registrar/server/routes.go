package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"switchyard/internal/contract"
	"switchyard/internal/validate"
	"switchyard/registrar/store"
)

// maxWait caps the wait parameter of GET /v1/routes.
const maxWait = 60 * time.Second

// routes serves GET /v1/routes, the long-poll the filter's sync uses, in the three
// versions of docs/sync-protocol.md.
//
// Version 1 (no v): the whole table {"revision": R, "routes": {...}}.
//   - after absent: the table at once (200).
//   - after=N with N != current revision R: the table at once. N < R is the normal
//     "you are behind"; N > R happens when the registrar's data was restored from an
//     older backup, and answering at once keeps such clients from waiting forever.
//   - after=R: wait until the table changes (200 with the new table) or until wait
//     seconds pass (304, no body). wait is a non-negative number of seconds, default
//     0 (answer at once), capped at 60.
//   - a table larger than the page limit: 507, saying to upgrade the filter.
//
// Version 2 (v=2): a delta from the retained history when the proxy's lineage is
// current and its revision is held, else the full table in pages cut by size from a
// pinned revision (snapshot=R&start=K for the next ones; 410 snapshot_gone once the
// store no longer holds R); 304 after wait seconds when nothing changed. No answer
// is larger than the page limit.
//
// Version 3 (v=3): version 2 whose route values are target-set strings
// (internal/contract); versions 1 and 2 give each name its first active target.
//
// At shutdown, waiting requests are answered 304 right away so the server can stop.
// Waiting costs no polling: each table carries a channel that is closed when the
// next one is published, so one commit wakes every waiter at once.
type routes struct {
	store     store.Store
	release   <-chan struct{}
	metrics   *Metrics
	pageBytes int
	observe   func(SyncRequest)
	pages     *pageCache                    // encoded pages of full tables, shared (pagecache.go)
	full      fullSlots                     // full-table answers being sent
	writeFor  time.Duration                 // how long a client has to take an answer
	v1        atomic.Pointer[cachedBody]    // the version-1 answer of the latest table asked for
	delta     [2]atomic.Pointer[cachedBody] // the latest delta answer of versions 2 and 3 (watchers woken together share it)
	log       *slog.Logger
	forkMu    sync.Mutex
	lastFork  time.Time // when a poll ahead last made the store fork (forkFor)
}

// forkEvery bounds how often polls ahead of the store make it start a new lineage:
// a poll's revision is the caller's word, and each new lineage sends every proxy the
// whole table.
const forkEvery = time.Minute

// cachedBody is an encoded answer and what it answers.
type cachedBody struct {
	table   *store.Table
	from    uint64
	lineage string
	body    []byte
}

// SyncRequest is who asked for the table and from where it stood; see
// WithSyncObserver.
type SyncRequest struct {
	// Proxy, Cluster and Version are as the proxy sent them ("" when absent), never
	// checked: they may hold anything (see the proxy registry for how they are shown).
	Proxy, Cluster, Version string
	After                   uint64
	Lineage                 string
	Remote                  string // the peer address
	// Wait is the poll's wait (capped at 60 s); HasWait says the poll sent one.
	Wait    time.Duration
	HasWait bool
	// Paging: a request for a further page (snapshot=); it carries no after or lineage.
	Paging bool
	// Unserved: After is beyond the revision the registrar holds in the same lineage,
	// so no registrar served it (or another replica is ahead of this one).
	Unserved bool
}

// envelopeBytes is what a full page or delta answer takes besides its routes: kind,
// lineage, revisions, next (a name of up to 100 bytes) and punctuation, with room
// to spare.
const envelopeBytes = 512

// maxIdentity bounds the lineage, and the recorded form of proxy, cluster and version.
const maxIdentity = 256

func (h *routes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", http.MethodGet)
		writeFailure(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here; use GET")
		return
	}
	q := r.URL.Query()
	version := 1
	switch v := q.Get(contract.QueryProtocol); {
	case !q.Has(contract.QueryProtocol):
	case v == contract.ProtocolV2:
		version = 2
	case v == contract.ProtocolV3:
		version = 3
	default:
		writeFailure(w, http.StatusBadRequest, "v: the protocol version must be 2 or 3, or absent for version 1 (got "+strconv.Quote(truncate(v))+")")
		return
	}
	var after uint64
	hasAfter := q.Has(contract.QueryAfter)
	if hasAfter {
		n, err := strconv.ParseUint(q.Get(contract.QueryAfter), 10, 64)
		if err != nil {
			writeFailure(w, http.StatusBadRequest, "after: must be a revision, a whole number >= 0 (got "+strconv.Quote(truncate(q.Get(contract.QueryAfter)))+")")
			return
		}
		after = n
	}
	var wait time.Duration
	if q.Has(contract.QueryWait) {
		sec, err := strconv.ParseFloat(q.Get(contract.QueryWait), 64)
		if err != nil || math.IsNaN(sec) || math.IsInf(sec, 0) || sec < 0 {
			writeFailure(w, http.StatusBadRequest, "wait: must be a number of seconds >= 0, at most 60 is used (got "+strconv.Quote(truncate(q.Get(contract.QueryWait)))+")")
			return
		}
		// Capped in seconds before the conversion: a time.Duration holds only ~292
		// years, and a larger float converts to a negative one.
		wait = time.Duration(min(sec, maxWait.Seconds()) * float64(time.Second))
	}
	if version == 1 {
		h.serveV1(w, r, hasAfter, after, wait)
		return
	}
	req := SyncRequest{After: after, Remote: r.RemoteAddr, Wait: wait, HasWait: q.Has(contract.QueryWait), Paging: q.Has(contract.QuerySnapshot) || q.Has(contract.QueryStart),
		Proxy: q.Get(contract.QueryProxy), Cluster: q.Get(contract.QueryCluster), Version: q.Get(contract.QueryVersion)}
	// Who asks never makes a poll fail (a proxy whose node id has a space must still
	// sync); the lineage is the protocol's own and must be well-formed.
	req.Lineage = q.Get(contract.QueryLineage)
	if err := checkIdentity(req.Lineage); err != nil {
		writeFailure(w, http.StatusBadRequest, "lineage: "+err.Error())
		return
	}
	var snapshot uint64
	if req.Paging {
		rev, err := strconv.ParseUint(q.Get(contract.QuerySnapshot), 10, 64)
		if err != nil || rev == 0 {
			writeFailure(w, http.StatusBadRequest, "snapshot: must be the revision of the full table being paged, from its first page (got "+strconv.Quote(truncate(q.Get(contract.QuerySnapshot)))+")")
			return
		}
		snapshot = rev
	}
	t := h.store.Current()
	// Only a poll that is answered is recorded, and an after beyond what this
	// registrar holds in its lineage is no revision it served (see the proxy registry).
	req.Unserved = !req.Paging && req.Lineage == h.store.Lineage() && after > t.Revision()
	if h.observe != nil {
		h.observe(req)
	}
	if req.Paging {
		h.writePage(w, version, snapshot, q.Get(contract.QueryStart))
		return
	}
	deadline := time.Now().Add(wait)
	if req.Lineage == h.store.Lineage() && after > t.Revision() {
		h.forkFor(req, t)
		t = h.store.Current()
	}
	// A proxy ahead of this replica in the same history was served by another replica
	// (in etcd mode, one whose watch is further along): wait for this one to catch up
	// instead of sending a full table the proxy would ignore as older.
	for req.Lineage == h.store.Lineage() && after > t.Revision() {
		if !h.wait(w, r, t, time.Until(deadline)) {
			return
		}
		t = h.store.Current()
	}
	if after != t.Revision() || req.Lineage != h.store.Lineage() {
		h.answerV2(w, version, t, after, req.Lineage)
		return
	}
	if !h.wait(w, r, t, time.Until(deadline)) {
		return
	}
	h.answerV2(w, version, h.store.Current(), after, req.Lineage)
}

// forkFor handles a proxy ahead of t in the store's lineage when the store never
// lags behind what it handed out (store.Forker, the embedded store): the proxy's table
// is another history under this lineage, and waiting would give it deltas against
// the wrong table. The store starts a new lineage (at most once per forkEvery), and
// the proxy takes the table whole. Other stores (etcd replicas, whose watches lag)
// let it wait for this replica to catch up.
func (h *routes) forkFor(req SyncRequest, t *store.Table) {
	f, ok := h.store.(store.Forker)
	if !ok {
		return
	}
	h.forkMu.Lock()
	if !h.lastFork.IsZero() && time.Since(h.lastFork) < forkEvery {
		h.forkMu.Unlock()
		return
	}
	h.lastFork = time.Now()
	h.forkMu.Unlock()
	why := fmt.Sprintf("a proxy (%q from %s) holds revision %d of this lineage, above the %d this registrar reached: its table is another history under the same lineage (the data restored together with its lock file, as from a copy of the whole volume?); serving a new history (new lineage) so every proxy takes the table whole",
		req.Proxy, req.Remote, req.After, t.Revision())
	if out := f.Fork(why); out.Err != nil {
		h.log.Error("could not start a new history for a proxy ahead of this registrar; it waits", "proxy", req.Proxy, "err", out.Err)
	}
}

// checkIdentity: printable ASCII without spaces, at most maxIdentity bytes.
func checkIdentity(v string) error {
	if len(v) > maxIdentity {
		return errors.New("must be at most 256 characters")
	}
	if !validate.VisibleASCII(v) {
		return errors.New("must be printable ASCII without spaces")
	}
	return nil
}

// wait parks the request until t is replaced (true) or answers 304 when wait passes
// or the server shuts down (false).
func (h *routes) wait(w http.ResponseWriter, r *http.Request, t *store.Table, wait time.Duration) bool {
	if wait <= 0 {
		w.WriteHeader(http.StatusNotModified)
		return false
	}
	h.metrics.watchers.Inc()
	defer h.metrics.watchers.Dec()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-t.Changed():
		return true
	case <-timer.C:
		w.WriteHeader(http.StatusNotModified)
	case <-h.release:
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusNotModified)
	case <-r.Context().Done():
	}
	return false
}

func (h *routes) serveV1(w http.ResponseWriter, r *http.Request, hasAfter bool, after uint64, wait time.Duration) {
	t := h.store.Current()
	if !hasAfter || t.Revision() != after {
		h.writeTable(w, t)
		return
	}
	if h.wait(w, r, t, wait) {
		h.writeTable(w, h.store.Current())
	}
}

// answerV2 answers a proxy (protocol version 2 or 3) at revision after of lineage
// with a delta when one is held and fits, else with the first page of the full table t.
func (h *routes) answerV2(w http.ResponseWriter, version int, t *store.Table, after uint64, lineage string) {
	cur := h.store.Lineage()
	if after > 0 && after < t.Revision() && lineage == cur {
		cache := &h.delta[version-2]
		if c := cache.Load(); c != nil && c.from == after && c.table == t && c.lineage == cur {
			h.writeJSON(w, c.body)
			return
		}
		if d, ok := h.store.Delta(after, h.pageBytes-envelopeBytes); ok {
			body := encodeDelta(version, cur, d)
			if d.Revision == t.Revision() {
				cache.Store(&cachedBody{table: t, from: after, lineage: cur, body: body})
			}
			h.writeJSON(w, body)
			return
		}
	}
	h.writePage(w, version, t.Revision(), "")
}

// writePage answers one page of the full table at rev from start, encoded once and
// shared with every request for the same page (of the same protocol version), within
// the bound on full-table answers sent at once.
func (h *routes) writePage(w http.ResponseWriter, version int, rev uint64, start string) {
	if !h.full.take(w) {
		return
	}
	defer h.full.free()
	lineage := h.store.Lineage()
	body, err := h.pages.get(pageKey{version, lineage, rev, start}, func() ([]byte, error) {
		p, err := h.store.Page(rev, start, h.pageBytes-envelopeBytes)
		if err != nil {
			return nil, err
		}
		return encodePage(version, lineage, p), nil
	})
	if errors.Is(err, store.ErrSnapshotGone) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusGone)
		json.NewEncoder(w).Encode(map[string]string{contract.AnswerError: contract.SnapshotGone,
			contract.AnswerMessage: "the registrar no longer holds revision " + strconv.FormatUint(rev, 10) + " (pages are kept 60 s after the last request); start over with a full table (v=2 without snapshot)"})
		return
	}
	if err != nil {
		writeFailure(w, http.StatusServiceUnavailable, "the table cannot be read now; retry")
		return
	}
	h.writeJSON(w, body)
}

// writeJSON answers 200 with body, which the client must take within writeFor: one
// that does not read loses the connection (and whatever slot the answer holds).
//
// The deadline is lifted once the answer is handed over (flushed), so that it does
// not outlive the answer on a kept-alive connection (a server with a WriteTimeout
// sets its own at the next request).
func (h *routes) writeJSON(w http.ResponseWriter, body []byte) {
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Now().Add(h.writeFor))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(body); err == nil && rc.Flush() == nil {
		rc.SetWriteDeadline(time.Time{})
	}
}

func encodeDelta(version int, lineage string, d store.Delta) []byte {
	b := make([]byte, 0, envelopeBytes+len(d.Upserts)*48+len(d.Removals)*24)
	b = append(b, `{"`+contract.AnswerKind+`":"`+contract.KindDelta+`","`+contract.AnswerLineage+`":`...)
	b = appendString(b, lineage)
	b = append(b, `,"`+contract.AnswerFrom+`":`...)
	b = strconv.AppendUint(b, d.From, 10)
	b = append(b, `,"`+contract.AnswerRevision+`":`...)
	b = strconv.AppendUint(b, d.Revision, 10)
	b = append(b, `,"`+contract.AnswerUpserts+`":{`...)
	b = appendRoutes(b, version, d.Upserts)
	b = append(b, `},"`+contract.AnswerRemovals+`":[`...)
	for i, n := range d.Removals {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, n)
	}
	return append(b, "]}\n"...)
}

func encodePage(version int, lineage string, p store.Page) []byte {
	b := make([]byte, 0, envelopeBytes+len(p.Routes)*48)
	b = append(b, `{"`+contract.AnswerKind+`":"`+contract.KindFull+`","`+contract.AnswerLineage+`":`...)
	b = appendString(b, lineage)
	b = append(b, `,"`+contract.AnswerRevision+`":`...)
	b = strconv.AppendUint(b, p.Revision, 10)
	b = append(b, `,"`+contract.AnswerRoutes+`":{`...)
	b = appendRoutes(b, version, p.Routes)
	b = append(b, '}')
	if p.Next != "" {
		b = append(b, `,"`+contract.AnswerNext+`":`...)
		b = appendString(b, p.Next)
	}
	return append(b, "}\n"...)
}

// writeTable answers with the whole table t in the version-1 shape
// {"revision": R, "routes": {"name": "target", ...}}, names in byte order. The body is
// encoded once per table, however many proxies ask for it. A table larger than the
// page limit is refused with 507: version 1 has no pages.
func (h *routes) writeTable(w http.ResponseWriter, t *store.Table) {
	if t.RoutesSize()+envelopeBytes > int64(h.pageBytes) {
		writeFailure(w, http.StatusInsufficientStorage, "the table ("+strconv.Itoa(t.Len())+" servers, about "+strconv.FormatInt(t.RoutesSize()>>10, 10)+
			" KiB) is larger than one answer may be (-page-bytes "+strconv.Itoa(h.pageBytes)+"); this filter asks with sync protocol version 1, which cannot page the table: upgrade the filter to one that sends v=2")
		return
	}
	if !h.full.take(w) {
		return
	}
	defer h.full.free()
	b := h.v1.Load()
	if b == nil || b.table != t {
		b = &cachedBody{table: t, body: encodeV1(t)}
		h.v1.Store(b)
	}
	h.writeJSON(w, b.body)
}

func encodeV1(t *store.Table) []byte {
	b := make([]byte, 0, 64+t.RoutesSize())
	b = append(b, `{"`+contract.AnswerRevision+`":`...)
	b = strconv.AppendUint(b, t.Revision(), 10)
	b = append(b, `,"`+contract.AnswerRoutes+`":{`...)
	first := true
	t.Ascend("", func(sv store.Server) bool {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendRoute(b, sv.Name, routeValue(1, sv.Route()))
		return true
	})
	return append(b, "}}\n"...)
}

// appendRoutes appends routes as the members of a JSON object, name: target, the
// target as protocol version gives it (routeValue).
func appendRoutes(b []byte, version int, routes []store.Route) []byte {
	for i, r := range routes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendRoute(b, r.Name, routeValue(version, r.Target))
	}
	return b
}

// routeValue is a route's target as protocol version sends it: the target-set string
// in version 3; in versions 1 and 2, which carry one address per name, the set's
// first active target (a substring of set: nothing is allocated).
func routeValue(version int, set string) string {
	if version >= 3 {
		return set
	}
	return contract.FirstActiveTarget(set)
}

func appendRoute(b []byte, name, target string) []byte {
	b = appendString(b, name)
	b = append(b, ':')
	return appendString(b, target)
}

// appendString appends s as a JSON string. Names and targets are validated to plain
// ASCII that needs no escaping; anything else goes through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
