package main

import (
	"errors"
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"switchyard/filter/syncing"
	"switchyard/internal/abi"
	"switchyard/internal/contract"
	"switchyard/internal/pluginconfig"
)

// tickMillis is how often a root checks the poll lease and whether a poll is due.
// Polls that follow a 200 or 304 are sent at once from the answer's callback; ticks
// only drive retries after a failure, the first poll, the lease and (routers) the
// table's age.
const tickMillis = 100

// syncer is the "sync" root: a singleton service that long-polls the registrar and
// keeps the shared-data table in step with it. It holds the poll lease with priority
// (filter/syncing/lease.go), so routers beside a live sync never poll. No goroutine,
// no Go timer (one armed timer makes the Go runtime call poll_oneoff at every GC,
// which crashes Envoy 1.33–1.37).
type syncer struct {
	types.DefaultPluginContext
	p     *poller
	lease *syncing.Lease
}

func newSyncer(cfg pluginconfig.Config) *syncer {
	now := syncNow()
	s := &syncer{lease: syncing.NewLease(syncing.RoleSync, vmID(now), casStore{})}
	s.lease.Start(now)
	s.p = newPoller(cfg, proxyIdentity(cfg), defineSyncCounters(), nil)
	return s
}

func (s *syncer) NewHttpContext(uint32) types.HttpContext { return &misconfiguredStream{} }

func (s *syncer) OnTick() {
	now := syncNow()
	s.lease.Tick(now)
	s.p.m.Tick(now)
}

// poller carries one syncing.Machine's host calls: the sync's, or the router's that
// holds the lease. It is the machine's syncing.Host.
type poller struct {
	cluster string
	m       *syncing.Machine
	metrics syncCounters
	// current, when set, is asked before an answer is applied: a router that lost the
	// lease (or started a new term) drops the answer of a poll it still had in flight.
	current func(*poller) bool
}

type syncCounters struct {
	success, failure, size, revision uint32
}

func defineSyncCounters() syncCounters {
	return syncCounters{
		success:  uint32(proxywasm.DefineCounterMetric(contract.MetricSyncSuccess)),
		failure:  uint32(proxywasm.DefineCounterMetric(contract.MetricSyncFailure)),
		size:     uint32(proxywasm.DefineGaugeMetric(contract.MetricTableSize)),
		revision: uint32(proxywasm.DefineGaugeMetric(contract.MetricTableRevision)),
	}
}

// newPoller starts a Machine from what shared data holds (syncing.New adopts the table
// an earlier poller wrote).
func newPoller(cfg pluginconfig.Config, id syncing.Identity, metrics syncCounters, current func(*poller) bool) *poller {
	p := &poller{cluster: cfg.Registrar.Cluster, metrics: metrics, current: current}
	p.m = syncing.New(cfg.Registrar, id, p, syncNow())
	return p
}

// proxyIdentity is who the proxy says it is in its polls.
func proxyIdentity(cfg pluginconfig.Config) syncing.Identity {
	id := syncing.Identity{Proxy: cfg.ProxyID, Cluster: nodeProperty("cluster"), Version: syncing.Version()}
	if id.Proxy == "" {
		id.Proxy = nodeProperty("id")
	}
	return id
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

// vmID draws the VM's holder id for the lease: there is no ABI call for a VM's
// identity, so 64 random bits (WASI random_get, allowed in every callback). Should the
// host refuse, the host time stands in: unique enough among a proxy's workers.
func vmID(now int64) string {
	if b, ok := randomBytes8(); ok {
		return strconv.FormatUint(b, 36)
	}
	return "t" + strconv.FormatInt(now, 36)
}

func (p *poller) onAnswer(numHeaders, bodySize, _ int) {
	if p.current != nil && !p.current(p) {
		return
	}
	now := syncNow()
	if numHeaders == 0 {
		p.m.Answer(now, syncing.Reply{Failed: &syncing.CallFailure{Status: callStatus()}})
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
			p.m.Answer(now, syncing.Reply{Failed: &syncing.CallFailure{Status: "reading the answer's body failed: " + err.Error()}})
			return
		}
		r.Body = b
	}
	p.m.Answer(now, r)
}

// The syncing.Host methods.

func (p *poller) Get(key string) ([]byte, bool) {
	v, _, err := proxywasm.GetSharedData(key)
	return v, err == nil
}

func (p *poller) Set(key, value string) error {
	if st := setSharedData(key, value); st != abi.StatusOK {
		return errors.New("proxy_set_shared_data of " + key + ": " + st.String())
	}
	return nil
}

func (p *poller) Dispatch(headers [][2]string, timeoutMillis uint32) error {
	_, err := proxywasm.DispatchHttpCall(p.cluster, headers, nil, nil, timeoutMillis, p.onAnswer)
	return err
}

func (p *poller) Log(warn bool, msg string) {
	if warn {
		proxywasm.LogWarn(msg)
	} else {
		proxywasm.LogInfo(msg)
	}
}

func (p *poller) Count(ok bool) {
	if ok {
		syncRecordMetric(p.metrics.success, 1)
	} else {
		syncRecordMetric(p.metrics.failure, 1)
	}
}

func (p *poller) Gauges(size int, revision uint64) {
	syncRecordMetric(p.metrics.size, uint64(size))
	syncRecordMetric(p.metrics.revision, revision)
}

// casStore is shared data with its cas (syncing.CASStore), through the SDK: the lease
// is read once a tick, never on the request path.
type casStore struct{}

func (casStore) GetCAS(key string) ([]byte, uint32, bool) {
	v, cas, err := proxywasm.GetSharedData(key)
	return v, cas, err == nil
}

func (casStore) SetCAS(key, value string, cas uint32) error {
	err := proxywasm.SetSharedData(key, []byte(value), cas)
	if errors.Is(err, types.ErrorStatusCasMismatch) {
		return syncing.ErrCasMismatch
	}
	return err
}
