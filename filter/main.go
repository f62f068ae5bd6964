// Command filter is Switchyard's proxy-wasm plugin: it routes requests under the
// configured path prefixes to the target registered for the server name in their
// header (README.md, "Filter configuration"). One module holds two roots, chosen by the
// plugin_root_id property:
//
//   - "sync" (sync.go) runs once per proxy as a singleton service and long-polls the
//     registrar (docs/sync-protocol.md), writing the route table into shared data
//     (layout in filter/syncing/layout.go);
//   - "router" (router.go) is the HTTP filter on every worker; it reads one
//     shared-data key per request and rewrites :authority or answers locally.
//     Without a sync (router-only mode, where only HTTP filters can be deployed),
//     one router VM per vm_id, elected by a lease in shared data, polls as the sync
//     would (filter/syncing/lease.go).
//
// Both must use the same vm_id, since shared data is kept per vm_id. The decisions
// are plain Go tested natively (internal/pluginconfig, filter/routing, filter/syncing);
// the files named after a root are the ABI glue around them, and abi_wasm.go and
// abi_sync_wasm.go hold the module's own host calls.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o bin/filter.wasm ./filter
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

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
		p.root = newSyncer(cfg)
	}
	// Both roots tick: the sync to poll, routers for the poll lease (router-only mode)
	// and the table's age. A tick is its own callback; the request path never sees it.
	if err := proxywasm.SetTickPeriodMilliSeconds(tickMillis); err != nil {
		proxywasm.LogCritical("cannot start the " + rootID + " root's tick: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	return types.OnPluginStartStatusOK
}

func (p *plugin) OnTick() {
	if p.root != nil {
		p.root.OnTick()
	}
}

func (p *plugin) NewHttpContext(id uint32) types.HttpContext {
	if p.root == nil {
		return &misconfiguredStream{}
	}
	return p.root.NewHttpContext(id)
}
