package main

import (
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"switchyard/filter/polling"
	"switchyard/internal/pluginconfig"
)

// poller carries one polling.Machine's host calls: the sync root's, or that of the
// router VM holding the poll lease (router-only mode). It is the machine's
// polling.Host; shared data goes through sharedStore.
type poller struct {
	sharedStore
	cluster string
	m       *polling.Machine
	metrics pollMetrics
	// current, when set, is asked before an answer is applied: a router that lost the
	// lease (or started a new term) drops the answer of a poll it still had in flight.
	// It also renews the lease for the callback (polling.Lease.Renew).
	current func(*poller) bool
}

// newPoller starts a Machine from what shared data holds (polling.New adopts the table
// an earlier poller wrote).
func newPoller(cfg pluginconfig.Config, id polling.Identity, metrics pollMetrics, current func(*poller) bool) *poller {
	p := &poller{cluster: cfg.Registrar.Cluster, metrics: metrics, current: current}
	p.m = polling.New(cfg.Registrar, id, p, hostNow())
	return p
}

// proxyIdentity is who the proxy says it is in its polls.
func proxyIdentity(cfg pluginconfig.Config) polling.Identity {
	id := polling.Identity{Proxy: cfg.ProxyID, Cluster: nodeProperty("cluster"), Version: polling.Version()}
	if id.Proxy == "" {
		id.Proxy = nodeProperty("id")
	}
	return id
}

// nodeProperty reads a field of Envoy's node (xds.node.<field>; node.<field> before
// Envoy 1.33), "" when the host has none or it is not a valid identity.
func nodeProperty(field string) string {
	for _, path := range [][]string{{"xds", "node", field}, {"node", field}} {
		if v, err := proxywasm.GetProperty(path); err == nil && polling.ValidIdentity(string(v)) {
			return string(v)
		}
	}
	return ""
}

// vmID draws the VM's holder id for the poll lease: there is no ABI call for a VM's
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
	now := hostNow()
	if numHeaders == 0 {
		p.m.Answer(now, polling.Reply{Failed: &polling.CallFailure{Status: callStatus()}})
		return
	}
	r := polling.Reply{}
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
			p.m.Answer(now, polling.Reply{Failed: &polling.CallFailure{Status: "reading the answer's body failed: " + err.Error()}})
			return
		}
		r.Body = b
	}
	p.m.Answer(now, r)
}

// The polling.Host methods besides shared data.

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
		recordMetric(p.metrics.success, 1)
	} else {
		recordMetric(p.metrics.failure, 1)
	}
}

func (p *poller) Gauges(size int, revision uint64) {
	recordMetric(p.metrics.size, uint64(size))
	recordMetric(p.metrics.revision, revision)
}
