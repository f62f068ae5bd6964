package envoycheck

import (
	"net"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"

	"switchyard/internal/envoyconfig"
)

// Names this configuration is built on. The DFP filter compares the route's
// cluster_type name with dfpClusterType literally (proxy_filter.cc) and does nothing on
// a mismatch, so it must be exact.
const (
	syncRootID      = "sync"
	routerRootID    = "router"
	v8Runtime       = "envoy.wasm.runtime.v8"
	dfpClusterType  = "envoy.clusters.dynamic_forward_proxy"
	registrarPrefix = "/api"
	// The sync's http call waits wait_seconds for the long-poll plus this margin.
	callMargin = 10 * time.Second
)

// CheckSemantics returns every violation of the rules Envoy applies at start-up that its
// schema cannot express, and of Switchyard's own invariants for this file (see the Rule
// constants). It expects a config that loads; run ValidateDeep for the schema rules.
func CheckSemantics(bs *bootstrapv3.Bootstrap) []Problem {
	v := &view{Config: envoyconfig.Inspect(bs)}
	var ps problems
	checkAdmin(bs, &ps)
	checkWasm(v, &ps)
	pc, pcOK := checkPluginConfig(v, &ps)
	if pcOK {
		checkRegistrar(v, pc, &ps)
	}
	dfp := checkDFPClusters(v, &ps)
	if len(v.Managers) == 0 {
		ps.add(RuleHTTPManager, "static_resources.listeners", "no listener has an envoy.filters.network.http_connection_manager with an inline typed_config")
	}
	for _, m := range v.Managers {
		checkChain(m, &ps)
		checkDNSCache(m, dfp, &ps)
		checkRoutes(m, v, dfp, pc, &ps)
	}
	return append(v.faults(), ps...)
}

func checkAdmin(bs *bootstrapv3.Bootstrap, ps *problems) {
	sa := bs.GetAdmin().GetAddress().GetSocketAddress()
	if sa == nil {
		return // no admin listener, or a unix socket
	}
	ip := net.ParseIP(sa.GetAddress())
	if sa.GetAddress() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		ps.add(RuleAdminLoopback, "admin.address.socket_address.address",
			"admin listens on %q; the admin API can stop the proxy and dump its config, so bind it to 127.0.0.1", sa.GetAddress())
	}
}
