package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"switchyard/filter/polling"
	"switchyard/internal/contract"
	"switchyard/internal/pluginconfig"
)

// routerTick is what a router VM does on its tick, apart from requests: the poll
// lease of router-only mode (no sync root: the VM that holds the lease polls, see
// filter/polling/lease.go) and the table's age (polling.AgeWatch).
type routerTick struct {
	cfg      pluginconfig.Config
	identity polling.Identity
	lease    *polling.Lease
	poller   *poller // not nil while this VM holds the lease
	metrics  pollMetrics
	// The table's age: the gauge, set on every tick, and the stale watch.
	age      *polling.AgeWatch
	ageGauge uint32
}

func newRouterTick(cfg pluginconfig.Config) routerTick {
	return routerTick{
		cfg:      cfg,
		identity: proxyIdentity(cfg),
		metrics:  definePollMetrics(),
		lease:    polling.NewLease(polling.RoleRouter, vmID(hostNow()), sharedStore{}),
		age:      polling.NewAgeWatch(cfg.StaleAfter(), sharedStore{}),
		ageGauge: defineGauge(contract.MetricTableAge),
	}
}

// run takes one tick. The lease: the VM that takes it starts a poller from the table
// in shared data (another poller may have written it last) and polls on this tick, as
// the sync root would; the VM that loses it stops, and the answer of a poll it has in
// flight is dropped.
func (t *routerTick) run() {
	now := hostNow()
	switch t.lease.Tick(now) {
	case polling.LeaseAcquired:
		proxywasm.LogInfo("router: no live sync or other router polls the registrar for this proxy; this VM (" +
			t.lease.ID() + ") holds the poll lease and polls")
		t.poller = newPoller(t.cfg, t.identity, t.metrics, t.pollerCurrent)
	case polling.LeaseLost:
		proxywasm.LogInfo("router: this VM (" + t.lease.ID() + ") no longer holds the poll lease (" +
			t.lease.Current.Role + " " + t.lease.Current.Holder + " does); it stops polling")
		t.poller = nil
	}
	if t.poller != nil {
		t.poller.m.Tick(now)
	}
	a := t.age.Tick(now)
	if a.Known {
		recordMetric(t.ageGauge, uint64(a.Seconds))
	}
	switch a.Event {
	case polling.AgeStale:
		proxywasm.LogWarn(a.Message)
	case polling.AgeFresh:
		proxywasm.LogInfo(a.Message)
	}
}

// pollerCurrent tells an answer's callback whether its poller may still write the
// table, and renews the lease for the callback (polling.Lease.Renew).
func (t *routerTick) pollerCurrent(p *poller) bool {
	if t.poller != p {
		return false
	}
	if !t.lease.Renew(hostNow()) {
		t.poller = nil
		return false
	}
	return true
}
