package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"switchyard/filter/polling"
	"switchyard/internal/pluginconfig"
)

// syncRoot is the "sync" root: a singleton service whose poller long-polls the
// registrar and keeps the shared-data table in step with it. It holds the poll lease
// with priority (filter/polling/lease.go), so routers beside a live sync never poll.
// No goroutine, no Go timer (one armed timer makes the Go runtime call poll_oneoff at
// every GC, which crashes Envoy 1.33–1.37): the tick drives it.
type syncRoot struct {
	types.DefaultPluginContext
	p     *poller
	lease *polling.Lease
}

func newSyncRoot(cfg pluginconfig.Config) *syncRoot {
	now := hostNow()
	s := &syncRoot{lease: polling.NewLease(polling.RoleSync, vmID(now), sharedStore{})}
	s.lease.Start(now)
	s.p = newPoller(cfg, proxyIdentity(cfg), definePollMetrics(), s.renew)
	return s
}

// renew writes the lease again as a poll answer arrives (polling.Lease.Renew): the
// answer's callback may be long, and the sync always applies it.
func (s *syncRoot) renew(*poller) bool {
	s.lease.Renew(hostNow())
	return true
}

// NewHttpContext: an HTTP stream reaching this root is a misconfiguration.
func (s *syncRoot) NewHttpContext(uint32) types.HttpContext { return &misconfiguredStream{} }

// OnPluginDone releases the poll lease, so that routers poll until a new sync starts.
func (s *syncRoot) OnPluginDone() bool {
	s.lease.Release()
	return true
}

func (s *syncRoot) OnTick() {
	now := hostNow()
	s.lease.Tick(now)
	s.p.m.Tick(now)
}
