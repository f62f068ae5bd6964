package server

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// listProxies is GET /api/proxies: every proxy this registrar replica has seen poll
// (sync protocol 2 with proxy=), with its state against the current table. See
// README, "Which proxies have applied which revision".
func (a *api) listProxies(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, http.MethodGet)
		return
	}
	t := a.store.Current()
	rev, lineage := t.Revision(), a.store.Lineage()
	views, sum := a.proxies.list(rev, lineage)
	writeResult(w, http.StatusOK, result{Success: true, Revision: &rev, Lineage: lineage, Replica: a.proxies.replicaName(), Summary: &sum, Proxies: &views})
}

// Bounds of a write's timeout= (with wait=applied).
const (
	defaultApplyTimeout = 10 * time.Second
	maxApplyTimeout     = 60 * time.Second
)

// applyWait is what a write's query asked: wait=applied[&timeout=D].
type applyWait struct {
	on      bool
	timeout time.Duration
}

// parseApplyWait reads wait= and timeout= of a write. It is checked before the write,
// so a bad value changes nothing.
func parseApplyWait(q url.Values) (applyWait, error) {
	if !q.Has("wait") {
		if q.Has("timeout") {
			return applyWait{}, errors.New("timeout: only means something with wait=applied (answer once every proxy has applied the write, or at the timeout)")
		}
		return applyWait{}, nil
	}
	if w := q.Get("wait"); w != "applied" {
		return applyWait{}, errors.New("wait: the only value is \"applied\" (answer once every proxy that is not gone has applied the write); got " + strconv.Quote(truncate(w)))
	}
	aw := applyWait{on: true, timeout: defaultApplyTimeout}
	if q.Has("timeout") {
		v := q.Get("timeout")
		d, err := time.ParseDuration(v)
		if err != nil {
			sec, ferr := strconv.ParseFloat(v, 64)
			if ferr != nil || math.IsNaN(sec) || math.IsInf(sec, 0) {
				return applyWait{}, errors.New("timeout: must be a duration such as 5s or 1500ms, or a number of seconds (got " + strconv.Quote(truncate(v)) + ")")
			}
			d = time.Duration(sec * float64(time.Second))
		}
		if d <= 0 || d > maxApplyTimeout {
			return applyWait{}, errors.New("timeout: must be more than 0 and at most 60s (got " + strconv.Quote(truncate(v)) + ")")
		}
		aw.timeout = d
	}
	return aw, nil
}

// awaitApplied fills res with whether every proxy that is not gone has applied rev
// (wait=applied): applied, appliedBy and, when not all have, pending.
func (a *api) awaitApplied(r *http.Request, aw applyWait, rev uint64, res *result) {
	if !aw.on {
		return
	}
	out := a.proxies.waitApplied(r.Context(), rev, a.store.Lineage(), aw.timeout)
	by := out.Proxies - out.PendingCount
	res.Applied, res.AppliedBy = &out.Applied, &by
	if !out.Applied {
		res.Pending, res.PendingCount = &out.Pending, &out.PendingCount
	}
}
