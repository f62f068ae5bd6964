package polling

import (
	"strconv"

	"switchyard/internal/contract"
)

// The table's age, as routers see it: the poller (the sync, or the router holding the
// poll lease) writes the host's monotonic time (ns; WASI clock 1, one clock for all VMs
// of the process, unmoved by wall-clock steps) of its last successful poll to PolledKey
// (Machine.succeed); every router reads it on its tick, sets the gauge
// switchyard.table.age_seconds, and the proxy logs once when the age passes the
// configured bound and once when it is back under it. "Once" is per proxy, not per
// VM: StaleKey holds "1" while the table is stale, and only the VM whose cas write
// flips it logs. A dead poller, or a registrar that stopped answering, otherwise
// leaves routers serving a frozen table with nothing but a stalled counter to show.

// StaleKey is "1" while the table is older than the bound, "0" otherwise.
const StaleKey = contract.StaleKey

// AgeEvent is what an AgeWatch tick changed.
type AgeEvent int

const (
	AgeUnchanged AgeEvent = iota
	AgeStale              // the table just passed the bound: log it
	AgeFresh              // it is back under the bound: log it
)

// AgeReport is one tick's reading.
type AgeReport struct {
	Known   bool  // PolledKey holds a time (no poll has succeeded yet otherwise)
	Seconds int64 // the table's age, whole seconds, never negative
	Event   AgeEvent
	Message string // the line to log for Event
}

// AgeWatch is one router VM's side of the table's age.
type AgeWatch struct {
	boundNanos int64
	boundText  string
	st         CASStore
}

// NewAgeWatch watches against a bound of boundSeconds (pluginconfig's StaleAfter).
func NewAgeWatch(boundSeconds int, st CASStore) *AgeWatch {
	return &AgeWatch{boundNanos: int64(boundSeconds) * 1e9, boundText: strconv.Itoa(boundSeconds), st: st}
}

// Tick reads the table's age at now, the host's monotonic time (ns). A time ahead of
// now is of another clock (wall-clock ns, written by a filter of before the monotonic
// clock) and is no age: unknown until the poller writes its next one.
func (w *AgeWatch) Tick(now int64) AgeReport {
	v, _, ok := w.st.GetCAS(PolledKey)
	if !ok {
		return AgeReport{}
	}
	polled, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || polled > now {
		return AgeReport{}
	}
	age := max(now-polled, 0)
	r := AgeReport{Known: true, Seconds: age / 1e9}
	stale := age > w.boundNanos
	sv, cas, present := w.st.GetCAS(StaleKey)
	if !present {
		// Envoy ignores cas on a missing key, so creating it cannot tell two VMs
		// apart: create it as "0" (harmless twice) and flip it with cas later.
		w.st.SetCAS(StaleKey, "0", 0)
		return r
	}
	switch {
	case stale && string(sv) != "1":
		if w.st.SetCAS(StaleKey, "1", cas) == nil {
			r.Event = AgeStale
			r.Message = "router: the route table is stale: the last successful poll of the registrar was " +
				strconv.FormatInt(r.Seconds, 10) + " s ago (stale_after_seconds is " + w.boundText + "); routers keep serving it, " +
				"but changes made since do not reach this proxy. See the sync's log lines (or, without a sync, those of the router holding the poll lease) " +
				"for why polls fail, and check that the registrar is up and reachable"
		}
	case !stale && string(sv) == "1":
		if w.st.SetCAS(StaleKey, "0", cas) == nil {
			r.Event = AgeFresh
			r.Message = "router: the route table is fresh again: the registrar was polled " + strconv.FormatInt(r.Seconds, 10) + " s ago"
		}
	}
	return r
}
