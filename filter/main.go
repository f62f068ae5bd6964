// Command filter is Switchyard's proxy-wasm plugin: it routes requests under the
// configured path prefixes to the target registered for the server name in their
// header (README.md, "Filter configuration"). One module holds two roots, chosen by the
// plugin_root_id property:
//
//   - "sync" (sync.go) runs once per proxy as a singleton service; its poller
//     long-polls the registrar (docs/sync-protocol.md) and writes the route table into
//     shared data (layout in filter/polling/layout.go);
//   - "router" (router.go) is the HTTP filter on every worker; it reads one
//     shared-data key per request and rewrites :authority or answers locally. On its
//     tick (router_tick.go) it watches the table's age and, without a sync root
//     (router-only mode, where only HTTP filters can be deployed), competes for the
//     poll lease in shared data: the one router VM per vm_id that holds it runs a
//     poller as the sync root would (filter/polling/lease.go).
//
// Words: "sync" is the singleton root only; the thing that polls the registrar is the
// poller (poller.go here, its decisions in filter/polling), whichever root runs it.
//
// Both roots must use the same vm_id, since shared data is kept per vm_id. The
// decisions are plain Go tested natively (internal/pluginconfig, filter/routing,
// filter/polling); the files here are the ABI glue around them: shared.go is the one
// path to shared data, abi_wasm.go holds the module's own host calls (abi_native.go
// their native stand-ins, so the package builds and vets natively too).
//
// Build: GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o bin/filter.wasm ./filter
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"switchyard/internal/abi"
	"switchyard/internal/contract"
	"switchyard/internal/pluginconfig"
)

// main is required by the Go toolchain but never runs in a c-shared (reactor) module.
func main() {}

// init only registers the plugin factory: Envoy allows no host call but proxy_log
// while the module initialises.
func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

// plugin is a root context until on_configure tells which root it is; it then
// delegates to the router or the sync.
type plugin struct {
	types.DefaultPluginContext
	root types.PluginContext
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	id, err := proxywasm.GetProperty([]string{"plugin_root_id"})
	if err != nil {
		proxywasm.LogCritical("cannot read the plugin_root_id property (" + err.Error() + "); set root_id to \"" + contract.RootSync + "\" or \"" + contract.RootRouter + "\"")
		return types.OnPluginStartStatusFailed
	}
	rootID := string(id)
	if rootID != contract.RootSync && rootID != contract.RootRouter {
		proxywasm.LogCritical("unknown root_id \"" + rootID + "\": use \"" + contract.RootSync + "\" for the singleton service or \"" + contract.RootRouter + "\" for the HTTP filter")
		return types.OnPluginStartStatusFailed
	}
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && err != types.ErrorStatusNotFound {
		proxywasm.LogCritical("cannot read the plugin configuration: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	cfg, err := pluginconfig.Parse(data)
	if err != nil {
		proxywasm.LogCritical("invalid plugin configuration: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	if rootID == contract.RootRouter {
		p.root = newRouter(cfg)
	} else {
		p.root = newSyncRoot(cfg)
	}
	// Both roots tick: the sync to poll, routers for the poll lease (router-only mode)
	// and the table's age. A tick is its own callback; the request path never sees it.
	if err := proxywasm.SetTickPeriodMilliSeconds(tickMillis); err != nil {
		proxywasm.LogCritical("cannot start the " + rootID + " root's tick: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

// tickMillis is how often a root checks the poll lease and whether a poll is due.
// Polls that follow a 200 or 304 are sent at once from the answer's callback; ticks
// only drive retries after a failure, the first poll, the lease and (routers) the
// table's age.
const tickMillis = 100

func (p *plugin) OnTick() {
	if p.root != nil {
		p.root.OnTick()
	}
}

// OnPluginDone (proxy_on_done: the plugin is updated or removed) lets the root give
// up the poll lease, so another VM polls at its next tick rather than when the lease
// would have expired.
func (p *plugin) OnPluginDone() bool {
	if p.root != nil {
		return p.root.OnPluginDone()
	}
	return true
}

func (p *plugin) NewHttpContext(id uint32) types.HttpContext {
	if p.root == nil {
		return &misconfiguredStream{}
	}
	return p.root.NewHttpContext(id)
}

// jsonReplyHeaders are the headers of the filter's JSON replies that carry nothing else.
var jsonReplyHeaders = abi.EncodePairs([][2]string{{"content-type", "application/json"}})

// misconfiguredStream answers every request when an HTTP stream reaches the sync
// root (the HTTP filter configured with root_id "sync") or a root that failed to
// start: failing closed is the only safe answer, since the request would otherwise go
// upstream unrouted.
type misconfiguredStream struct {
	types.DefaultHttpContext
}

func (*misconfiguredStream) OnHttpRequestHeaders(int, bool) types.Action {
	proxywasm.LogError(`an HTTP request reached the "` + contract.RootSync + `" root: configure the HTTP filter with root_id "` + contract.RootRouter + `"`)
	sendLocalResponse(500, "switchyard_misconfigured",
		`{"error":"misconfigured","message":"The proxy's Switchyard filter is configured with root_id `+contract.RootSync+`; it must be `+contract.RootRouter+`"}`, jsonReplyHeaders)
	return types.ActionPause
}
