package main

import (
	"errors"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"switchyard/filter/syncing"
	"switchyard/internal/abi"
	"switchyard/internal/contract"
	"switchyard/internal/pluginconfig"
)

// tickMillis is how often the sync checks whether a poll is due. Polls that follow a
// 200 or 304 are sent at once from the answer's callback; ticks only drive retries
// after a failure and the first poll.
const tickMillis = 100

// syncer is the "sync" root: a singleton service that long-polls the registrar and
// keeps the shared-data table in step with it. Every decision is syncing.Machine's
// (plain Go, tested natively); this is the glue that carries proxy_on_tick, the
// http-call callback, shared data, logs and metrics between it and the host. No
// goroutine, no Go timer (one armed timer makes the Go runtime call poll_oneoff at
// every GC, which crashes Envoy 1.33–1.37).
type syncer struct {
	types.DefaultPluginContext
	cluster string
	m       *syncing.Machine
	metrics syncCounters
}

type syncCounters struct {
	success, failure, size, revision uint32
}

func newSyncer(cfg pluginconfig.Config) *syncer {
	s := &syncer{cluster: cfg.Registrar.Cluster, metrics: syncCounters{
		success:  uint32(proxywasm.DefineCounterMetric(contract.MetricSyncSuccess)),
		failure:  uint32(proxywasm.DefineCounterMetric(contract.MetricSyncFailure)),
		size:     uint32(proxywasm.DefineGaugeMetric(contract.MetricTableSize)),
		revision: uint32(proxywasm.DefineGaugeMetric(contract.MetricTableRevision)),
	}}
	id := syncing.Identity{Proxy: cfg.ProxyID, Cluster: nodeProperty("cluster"), Version: syncing.Version()}
	if id.Proxy == "" {
		id.Proxy = nodeProperty("id")
	}
	s.m = syncing.New(cfg.Registrar, id, s, syncNow())
	return s
}

// nodeProperty reads a field of Envoy's node (xds.node.<field>; node.<field> before
// Envoy 1.33), "" when the host has none or it is not a valid identity.
func nodeProperty(field string) string {
	for _, path := range [][]string{{"xds", "node", field}, {"node", field}} {
		if v, err := proxywasm.GetProperty(path); err == nil && syncing.ValidIdentity(string(v)) {
			return string(v)
		}
	}
	return ""
}

func (s *syncer) NewHttpContext(uint32) types.HttpContext { return &misconfiguredStream{} }

func (s *syncer) OnTick() { s.m.Tick(syncNow()) }

func (s *syncer) onAnswer(numHeaders, bodySize, _ int) {
	now := syncNow()
	if numHeaders == 0 {
		s.m.Answer(now, syncing.Reply{Failed: &syncing.CallFailure{Status: callStatus()}})
		return
	}
	r := syncing.Reply{}
	if hs, err := proxywasm.GetHttpCallResponseHeaders(); err == nil {
		for _, h := range hs {
			if h[0] == ":status" {
				r.Status = h[1]
				break
			}
		}
	}
	if bodySize > 0 {
		b, err := proxywasm.GetHttpCallResponseBody(0, bodySize)
		if err != nil {
			s.m.Answer(now, syncing.Reply{Failed: &syncing.CallFailure{Status: "reading the answer's body failed: " + err.Error()}})
			return
		}
		r.Body = b
	}
	s.m.Answer(now, r)
}

// The syncing.Host methods.

func (s *syncer) Get(key string) ([]byte, bool) {
	v, _, err := proxywasm.GetSharedData(key)
	return v, err == nil
}

func (s *syncer) Set(key, value string) error {
	if st := setSharedData(key, value); st != abi.StatusOK {
		return errors.New("proxy_set_shared_data of " + key + ": " + st.String())
	}
	return nil
}

func (s *syncer) Dispatch(headers [][2]string, timeoutMillis uint32) error {
	_, err := proxywasm.DispatchHttpCall(s.cluster, headers, nil, nil, timeoutMillis, s.onAnswer)
	return err
}

func (s *syncer) Log(warn bool, msg string) {
	if warn {
		proxywasm.LogWarn(msg)
	} else {
		proxywasm.LogInfo(msg)
	}
}

func (s *syncer) Count(ok bool) {
	if ok {
		syncRecordMetric(s.metrics.success, 1)
	} else {
		syncRecordMetric(s.metrics.failure, 1)
	}
}

func (s *syncer) Gauges(size int, revision uint64) {
	syncRecordMetric(s.metrics.size, uint64(size))
	syncRecordMetric(s.metrics.revision, revision)
}
