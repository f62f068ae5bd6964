package server

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"switchyard/registrar/store"
	"sync/atomic"
	"time"
)

// maxWait caps the wait parameter of GET /v1/routes.
const maxWait = 60 * time.Second

// routes serves GET /v1/routes?after=N&wait=S, the long-poll the filter's sync uses.
//
//   - after absent: the table at once (200).
//   - after=N with N != current revision R: the table at once. N < R is the normal
//     "you are behind"; N > R happens when the registrar's data was restored from an
//     older backup, and answering at once keeps such clients from waiting forever.
//   - after=R: wait until the table changes (200 with the new table) or until wait
//     seconds pass (304, no body). wait is a non-negative number of seconds, default
//     0 (answer at once), capped at 60.
//   - at shutdown, waiting requests are answered 304 right away so the server can stop.
//
// Waiting costs no polling: each snapshot carries a channel that is closed when the
// next one is published, so one commit wakes every waiter at once.
type routes struct {
	store   store.Store
	release <-chan struct{}
	metrics *metrics
	v1      atomic.Pointer[v1Body] // the version-1 answer of the latest table asked for
}

// v1Body is the version-1 answer for one table, encoded once.
type v1Body struct {
	table *store.Table
	body  []byte
}

func (h *routes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", http.MethodGet)
		writeFailure(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here; use GET")
		return
	}
	q := r.URL.Query()
	var after uint64
	hasAfter := q.Has("after")
	if hasAfter {
		n, err := strconv.ParseUint(q.Get("after"), 10, 64)
		if err != nil {
			writeFailure(w, http.StatusBadRequest, "after: must be a revision, a whole number >= 0 (got "+strconv.Quote(truncate(q.Get("after")))+")")
			return
		}
		after = n
	}
	var wait time.Duration
	if q.Has("wait") {
		sec, err := strconv.ParseFloat(q.Get("wait"), 64)
		if err != nil || math.IsNaN(sec) || math.IsInf(sec, 0) || sec < 0 {
			writeFailure(w, http.StatusBadRequest, "wait: must be a number of seconds >= 0, at most 60 is used (got "+strconv.Quote(truncate(q.Get("wait")))+")")
			return
		}
		wait = min(time.Duration(sec*float64(time.Second)), maxWait)
	}
	t := h.store.Current()
	if !hasAfter || t.Revision() != after {
		h.writeTable(w, t)
		return
	}
	if wait <= 0 {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.metrics.watchers.Inc()
	defer h.metrics.watchers.Dec()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-t.Changed():
		h.writeTable(w, h.store.Current())
	case <-timer.C:
		w.WriteHeader(http.StatusNotModified)
	case <-h.release:
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusNotModified)
	case <-r.Context().Done():
	}
}

// writeTable answers with the whole table t in the version-1 shape
// {"revision": R, "routes": {"name": "target", ...}}, names in byte order. The body is
// encoded once per table, however many proxies ask for it.
func (h *routes) writeTable(w http.ResponseWriter, t *store.Table) {
	b := h.v1.Load()
	if b == nil || b.table != t {
		b = &v1Body{table: t, body: encodeV1(t)}
		h.v1.Store(b)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b.body)))
	w.WriteHeader(http.StatusOK)
	w.Write(b.body)
}

func encodeV1(t *store.Table) []byte {
	b := make([]byte, 0, 64+t.Len()*48)
	b = append(b, `{"revision":`...)
	b = strconv.AppendUint(b, t.Revision(), 10)
	b = append(b, `,"routes":{`...)
	first := true
	t.Ascend("", func(sv store.Server) bool {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, sv.Host)
		b = append(b, ':')
		b = appendString(b, sv.IPAddress)
		return true
	})
	return append(b, "}}\n"...)
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
