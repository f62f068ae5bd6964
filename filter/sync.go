package main

import (
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"switchyard/internal/pluginconfig"
)

// tickMillis is how often the sync checks whether a poll is due. Polls that follow a
// 200 or 304 are sent at once from the answer's callback; ticks only drive retries
// after a failure and the first poll.
const tickMillis = 100

// syncer is the "sync" root: a singleton service that long-polls the registrar and
// keeps the shared-data table (layout in table.go) in step with it. It is driven by
// proxy_on_tick and the http-call callback only: no goroutine, no Go timer (one armed
// timer makes the Go runtime call poll_oneoff at every GC, which crashes Envoy
// 1.33–1.37). Fail-static: anything but a valid, newer snapshot leaves the live
// table as it is.
type syncer struct {
	types.DefaultPluginContext
	cfg     pluginconfig.Config
	metrics syncMetrics
	backoff *Backoff

	live     map[string]string // the table as last written to shared data
	revision uint64
	loaded   bool

	inFlight bool
	sentAt   int64 // host clock (ns) when the in-flight poll was sent
	dueAt    int64 // host clock (ns) when the next poll may be sent
	state    string
}

// newSyncer starts from what shared data already holds: when only the sync VM was
// replaced (the router VMs keep the vm_id's store alive), the table an earlier sync
// wrote is still there and still served. The new sync adopts it as its live table and
// revision, so its first poll asks only for something newer and its first diff empties
// the names removed while no sync ran.
func newSyncer(cfg pluginconfig.Config) *syncer {
	s := &syncer{
		cfg:     cfg,
		metrics: defineSyncMetrics(),
		backoff: NewBackoff(uint64(nowNanos())),
	}
	rec := RecoverTable(func(key string) ([]byte, bool) {
		v, _, err := proxywasm.GetSharedData(key)
		return v, err == nil
	})
	s.live, s.revision, s.loaded = rec.Live, rec.Revision, rec.Loaded
	if rec.Loaded {
		recordMetric(uint32(s.metrics.tableSize), uint64(len(s.live)))
		recordMetric(uint32(s.metrics.revision), s.revision)
		proxywasm.LogInfo("sync: resuming the table already in shared data at revision " +
			strconv.FormatUint(s.revision, 10) + " (" + strconv.Itoa(len(s.live)) + " servers)")
	}
	return s
}

func (s *syncer) NewHttpContext(uint32) types.HttpContext { return &misconfiguredStream{} }

// timeoutMillis is the poll's timeout: the registrar holds the poll for
// wait_seconds, so the timeout must be longer than that.
func (s *syncer) timeoutMillis() uint32 { return uint32(s.cfg.Registrar.WaitSeconds+10) * 1000 }

func (s *syncer) OnTick() {
	now := nowNanos()
	if s.inFlight {
		// The host times the call out itself and calls back; this is a guard
		// against a host that never answers, so the sync cannot stall for good.
		if now-s.sentAt > int64(s.timeoutMillis()+5000)*1e6 {
			s.inFlight = false
			s.fail("no_answer", "the poll got no answer, not even a timeout, within "+strconv.Itoa(int(s.timeoutMillis()/1000)+5)+" s")
		}
		return
	}
	if now >= s.dueAt {
		s.poll()
	}
}

// PollPath gives the :path of a poll: after=R once a table is live (the registrar
// then answers only when it has something newer), none before (it answers at once).
func PollPath(r pluginconfig.RegistrarConfig, revision uint64, loaded bool) string {
	p := r.Path + "?"
	if loaded {
		p += "after=" + strconv.FormatUint(revision, 10) + "&"
	}
	return p + "wait=" + strconv.Itoa(r.WaitSeconds)
}

func (s *syncer) poll() {
	r := s.cfg.Registrar
	headers := [][2]string{
		{":method", "GET"},
		{":path", PollPath(r, s.revision, s.loaded)},
		{":authority", r.Authority},
		{"accept", "application/json"},
	}
	if r.Token != "" {
		headers = append(headers, [2]string{"authorization", "Bearer " + r.Token})
	}
	if _, err := proxywasm.DispatchHttpCall(r.Cluster, headers, nil, nil, s.timeoutMillis(), s.onAnswer); err != nil {
		s.fail("dispatch", "the proxy refused the poll to cluster '"+r.Cluster+"' ("+err.Error()+"); check registrar.cluster names a configured cluster")
		return
	}
	s.inFlight = true
	s.sentAt = nowNanos()
}

func (s *syncer) onAnswer(numHeaders, bodySize, _ int) {
	s.inFlight = false
	if numHeaders == 0 {
		s.fail("unreachable", "the registrar could not be reached (connection failed, reset or timed out)")
		return
	}
	status := ""
	if hs, err := proxywasm.GetHttpCallResponseHeaders(); err == nil {
		for _, h := range hs {
			if h[0] == ":status" {
				status = h[1]
				break
			}
		}
	}
	switch status {
	case "304":
		s.succeed()
		s.poll()
	case "200":
		var body []byte
		if bodySize > 0 {
			b, err := proxywasm.GetHttpCallResponseBody(0, bodySize)
			if err != nil {
				s.fail("unreachable", "reading the registrar's answer failed: "+err.Error())
				return
			}
			body = b
		}
		snap, err := ParseSnapshot(body, s.revision, s.loaded)
		if err != nil {
			s.fail("invalid_snapshot", "the registrar sent an invalid route table ("+err.Error()+")")
			return
		}
		if err := s.apply(snap); err != nil {
			s.fail("shared_data", "writing the route table to shared data failed: "+err.Error())
			return
		}
		s.succeed()
		s.poll()
	case "401", "403":
		s.fail("http_"+status, "the registrar refused the poll with HTTP "+status+"; check registrar.token")
	default:
		s.fail("http_"+status, "the registrar answered HTTP "+status+" instead of 200 or 304")
	}
}

// apply writes the table (WriteTable: names and index), then the revision, then
// adopts the snapshot. On an error the live table stays the base of the next diff,
// with every name this apply touched marked uncertain, so the next good snapshot
// rewrites (or empties) whatever was half done.
func (s *syncer) apply(snap Snapshot) error {
	added, changed, removed, err := WriteTable(s.live, snap.Routes, func(key, value string) error {
		return proxywasm.SetSharedData(key, unsafeBytes(value), 0)
	})
	if err != nil {
		return err
	}
	rev := strconv.FormatUint(snap.Revision, 10)
	if err := proxywasm.SetSharedData(revisionKey, []byte(rev), 0); err != nil {
		return err
	}
	s.live, s.revision, s.loaded = snap.Routes, snap.Revision, true
	recordMetric(uint32(s.metrics.tableSize), uint64(len(s.live)))
	recordMetric(uint32(s.metrics.revision), snap.Revision)
	proxywasm.LogInfo("sync: table at revision " + rev + ": " + strconv.Itoa(len(s.live)) + " servers (" +
		strconv.Itoa(added) + " added, " + strconv.Itoa(changed) + " changed, " + strconv.Itoa(removed) + " removed)")
	return nil
}

func (s *syncer) succeed() {
	s.metrics.success.Increment(1)
	if s.state != "ok" && s.state != "" {
		proxywasm.LogInfo("sync: the registrar answers again after " + strconv.Itoa(s.backoff.Failures()) + " failed polls")
	}
	s.state = "ok"
	s.backoff.Reset()
}

// fail keeps the table, schedules a retry with backoff and logs once per change of
// state (kind), not once per failure: a registrar that is down for an hour gives one
// line, not thousands.
func (s *syncer) fail(kind, msg string) {
	s.metrics.failure.Increment(1)
	delay := s.backoff.Next()
	s.dueAt = nowNanos() + delay*1e6
	if kind != s.state {
		table := "no table is loaded yet, so routed paths answer 503"
		if s.loaded {
			table = "keeping the table at revision " + strconv.FormatUint(s.revision, 10) + " (" + strconv.Itoa(len(s.live)) + " servers)"
		}
		proxywasm.LogWarn("sync: " + msg + "; " + table + "; retrying with backoff from " + strconv.FormatInt(delay, 10) + " ms")
		s.state = kind
	}
}
