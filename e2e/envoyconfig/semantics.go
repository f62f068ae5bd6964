package envoyconfig

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	dfpclusterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/dynamic_forward_proxy/v3"
	commondfpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/dynamic_forward_proxy/v3"
	dfpfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_forward_proxy/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Names this configuration is built on. The DFP filter compares the route's
// cluster_type name with dfpClusterType literally (proxy_filter.cc) and does nothing on
// a mismatch, so it must be exact.
const (
	syncRootID      = "sync"
	routerRootID    = "router"
	v8Runtime       = "envoy.wasm.runtime.v8"
	dfpClusterType  = "envoy.clusters.dynamic_forward_proxy"
	httpOptionsKey  = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	registrarPrefix = "/api"
	// The sync's http call waits wait_seconds for the long-poll plus this margin.
	callMargin = 10 * time.Second
)

// wantChain is the HTTP filter chain, in order: CORS answers preflights first, the
// wasm router picks the target before the DFP resolves it, the router is last.
var wantChain = []struct{ name, typeName string }{
	{"envoy.filters.http.cors", "envoy.extensions.filters.http.cors.v3.Cors"},
	{"envoy.filters.http.wasm", "envoy.extensions.filters.http.wasm.v3.Wasm"},
	{"envoy.filters.http.dynamic_forward_proxy", "envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig"},
	{"envoy.filters.http.router", "envoy.extensions.filters.http.router.v3.Router"},
}

// CheckSemantics returns every violation of the rules Envoy applies at start-up that its
// schema cannot express, and of Switchyard's own invariants for this file (see the Rule
// constants). It expects a config that loads; run ValidateDeep for the schema rules.
func CheckSemantics(bs *bootstrapv3.Bootstrap) []Problem {
	v := inspect(bs)
	ps := append(problems{}, v.ps...)
	checkAdmin(bs, &ps)
	checkWasm(v, &ps)
	pc, pcOK := checkPluginConfig(v, &ps)
	if pcOK {
		checkRegistrar(v, pc, &ps)
	}
	dfp := checkDFPClusters(v, &ps)
	if len(v.managers) == 0 {
		ps.add(RuleHTTPManager, "static_resources.listeners", "no listener has an envoy.filters.network.http_connection_manager with an inline typed_config")
	}
	for _, m := range v.managers {
		checkChain(m, &ps)
		checkDNSCache(m, dfp, &ps)
		checkRoutes(m, v, dfp, pc, &ps)
	}
	return ps
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

func checkWasm(v *view, ps *problems) {
	if len(v.services) != 1 {
		ps.add(RuleWasmService, "bootstrap_extensions",
			"want exactly one envoy.bootstrap.wasm WasmService (the sync root), found %d", len(v.services))
		if len(v.services) == 0 {
			return
		}
	}
	svc := v.services[0]
	if !svc.msg.GetSingleton() {
		ps.add(RuleSingleton, svc.path+".singleton",
			"the sync service must be singleton: true, or every worker polls the registrar on its own")
	}
	sc := svc.msg.GetConfig()
	checkPlugin(sc, svc.path+".config", syncRootID, ps)
	svm := sc.GetVmConfig()
	if svm.GetVmId() == "" {
		ps.add(RuleVMID, svc.path+".config.vm_config.vm_id", "set a vm_id; the router filter must use the same one to see the sync's shared data")
	}
	if svm.GetCode().GetLocal().GetFilename() == "" {
		ps.add(RuleWasmCode, svc.path+".config.vm_config.code", "load the module from a local file (code.local.filename)")
	}
	for _, wf := range v.wasmFilters {
		fc := wf.msg.GetConfig()
		path := wf.path + ".config"
		checkPlugin(fc, path, routerRootID, ps)
		fvm := fc.GetVmConfig()
		if fvm.GetVmId() != svm.GetVmId() {
			ps.add(RuleVMID, path+".vm_config.vm_id",
				"vm_id %q differs from the sync service's %q; shared data is per vm_id, so the router would never see the table",
				fvm.GetVmId(), svm.GetVmId())
		}
		if f, s := fvm.GetCode().GetLocal().GetFilename(), svm.GetCode().GetLocal().GetFilename(); f != s {
			ps.add(RuleWasmCode, path+".vm_config.code",
				"the filter loads %q but the sync service loads %q; both roots must come from the same .wasm", f, s)
		}
	}
}

// checkPlugin holds the rules for one root: its root id, the runtime and fail-closed.
func checkPlugin(pc *wasmv3.PluginConfig, path, rootID string, ps *problems) {
	if pc.GetRootId() != rootID {
		ps.add(RuleRootID, path+".root_id", "root_id is %q, want %q", pc.GetRootId(), rootID)
	}
	if rt := pc.GetVmConfig().GetRuntime(); rt != v8Runtime {
		ps.add(RuleWasmRuntime, path+".vm_config.runtime", "runtime is %q, want %q (the runtime of Envoy's release builds)", rt, v8Runtime)
	}
	if pc.GetFailOpen() {
		ps.add(RuleFailOpen, path+".fail_open",
			"fail_open lets requests bypass a failed VM; on /sys the DFP would then forward to the client's own Host. Remove it")
	}
	switch fp := pc.GetFailurePolicy(); fp {
	case wasmv3.FailurePolicy_UNSPECIFIED, wasmv3.FailurePolicy_FAIL_CLOSED:
	default:
		ps.add(RuleFailOpen, path+".failure_policy",
			"failure_policy %s is not fail-closed; leave it unset (FAIL_CLOSED) so a failed VM answers 503 instead of letting requests through", fp)
	}
}

// checkPluginConfig checks the JSON both roots receive and returns the router's copy;
// ok is false when it cannot be read.
func checkPluginConfig(v *view, ps *problems) (pc PluginConfig, ok bool) {
	if len(v.services) == 0 || len(v.wasmFilters) == 0 {
		return pc, false // reported by checkWasm / checkChain
	}
	read := func(c *wasmv3.PluginConfig, path string) ([]byte, bool) {
		b, err := configurationBytes(c)
		if err != nil {
			ps.add(RulePluginConfig, path+".config.configuration", "%v", err)
			return nil, false
		}
		return b, true
	}
	svc, wf := v.services[0], v.wasmFilters[0]
	sync, syncOK := read(svc.msg.GetConfig(), svc.path)
	router, routerOK := read(wf.msg.GetConfig(), wf.path)
	if syncOK && routerOK && !bytes.Equal(sync, router) {
		ps.add(RulePluginConfig, wf.path+".config.configuration",
			"the router's configuration differs from the sync service's; give both the same text (a YAML anchor does that)")
	}
	if syncOK {
		if _, err := ParsePluginConfig(sync); err != nil {
			ps.add(RulePluginConfig, svc.path+".config.configuration", "%v", err)
		}
	}
	if !routerOK {
		return pc, false
	}
	pc, err := ParsePluginConfig(router)
	if err != nil {
		ps.add(RulePluginConfig, wf.path+".config.configuration", "%v", err)
		return pc, false
	}
	return pc, true
}

func checkRegistrar(v *view, pc PluginConfig, ps *problems) {
	name := pc.Registrar.Cluster
	c, ok := v.clusters[name]
	if !ok {
		ps.add(RuleRegistrar, "configuration.registrar.cluster",
			"the sync polls cluster %q, which is not defined; name the registrar's cluster", name)
		return
	}
	wait := time.Duration(pc.Registrar.WaitSeconds) * time.Second
	need := wait + callMargin
	opts, _ := v.unpack(c.GetTypedExtensionProtocolOptions()[httpOptionsKey], "").(*upstreamhttpv3.HttpProtocolOptions)
	common := opts.GetCommonHttpProtocolOptions()
	for _, limit := range []struct {
		field string
		d     time.Duration
	}{
		{"idle_timeout", common.GetIdleTimeout().AsDuration()},
		{"max_stream_duration", common.GetMaxStreamDuration().AsDuration()},
	} {
		field, d := limit.field, limit.d
		if d > 0 && d <= need {
			ps.add(RuleRegistrar, "static_resources.clusters["+name+"].typed_extension_protocol_options.common_http_protocol_options."+field,
				"%s %v cuts the sync's long-poll (held %v, call timeout %v); make it longer than %v", field, d, wait, need, need)
		}
	}
}

// checkDFPClusters checks every dynamic forward proxy cluster and returns their DNS
// cache configs by cluster name.
func checkDFPClusters(v *view, ps *problems) map[string]*commondfpv3.DnsCacheConfig {
	dfp := map[string]*commondfpv3.DnsCacheConfig{}
	for _, lc := range v.clusterList {
		c, path := lc.msg, lc.path
		ct := c.GetClusterType()
		if ct == nil {
			continue
		}
		cc, ok := v.unpack(ct.GetTypedConfig(), path+".cluster_type").(*dfpclusterv3.ClusterConfig)
		if !ok {
			if ct.GetName() == dfpClusterType {
				ps.add(RuleDFPClusterType, path+".cluster_type.typed_config",
					"cluster_type %s needs an envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig", dfpClusterType)
			}
			continue
		}
		dfp[c.GetName()] = cc.GetDnsCacheConfig()
		if ct.GetName() != dfpClusterType {
			ps.add(RuleDFPClusterType, path+".cluster_type.name",
				"cluster_type name is %q; the DFP filter ignores routes unless it is exactly %q", ct.GetName(), dfpClusterType)
		}
		if c.GetLbPolicy() != clusterv3.Cluster_CLUSTER_PROVIDED {
			ps.add(RuleDFPLBPolicy, path+".lb_policy", "lb_policy is %s; a dynamic forward proxy cluster needs CLUSTER_PROVIDED", c.GetLbPolicy())
		}
		if cc.GetAllowInsecureClusterOptions() {
			ps.add(RuleDFPInsecure, path+".cluster_type.typed_config.allow_insecure_cluster_options",
				"allow_insecure_cluster_options turns off SNI and SAN checks toward targets; leave it false")
			continue // Envoy skips the auto_sni rule then
		}
		a, has := c.GetTypedExtensionProtocolOptions()[httpOptionsKey]
		if !has {
			continue // Envoy fills in auto_sni and auto_san_validation itself
		}
		opts, _ := v.unpack(a, path+".typed_extension_protocol_options").(*upstreamhttpv3.HttpProtocolOptions)
		up := opts.GetUpstreamHttpProtocolOptions()
		if !up.GetAutoSni() || !up.GetAutoSanValidation() {
			ps.add(RuleDFPAutoSNI, path+".typed_extension_protocol_options.upstream_http_protocol_options",
				"Envoy refuses to start: \"dynamic_forward_proxy cluster must have auto_sni and auto_san_validation true "+
					"unless allow_insecure_cluster_options is set\"; set both to true")
		}
	}
	return dfp
}

func checkChain(m manager, ps *problems) {
	var got, want []string
	for _, f := range m.filters {
		got = append(got, f.name+" ("+f.typeName+")")
	}
	for _, w := range wantChain {
		want = append(want, w.name+" ("+w.typeName+")")
	}
	if !slices.Equal(got, want) {
		ps.add(RuleFilterOrder, m.path+".http_filters",
			"HTTP filters are [%s]; want exactly [%s] in that order", strings.Join(got, ", "), strings.Join(want, ", "))
	}
}

func checkDNSCache(m manager, dfp map[string]*commondfpv3.DnsCacheConfig, ps *problems) {
	for _, f := range m.filters {
		fc, ok := f.msg.(*dfpfilterv3.FilterConfig)
		if !ok {
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(dfp)) {
			cc := dfp[name]
			if !proto.Equal(fc.GetDnsCacheConfig(), cc) {
				ps.add(RuleDNSCache, f.path+".dns_cache_config",
					"differs from cluster %s's dns_cache_config; Envoy requires filter and cluster to share the same DNS cache settings "+
						"(use one YAML anchor for both)", name)
			}
		}
	}
}

func checkRoutes(m manager, v *view, dfp map[string]*commondfpv3.DnsCacheConfig, pc PluginConfig, ps *problems) {
	rc := m.hcm.GetRouteConfig()
	if rc == nil {
		ps.add(RuleRouteConfig, m.path, "route_config must be inline; routes from RDS cannot be checked offline")
		return
	}
	inChain := map[string]bool{}
	wasmName := ""
	for _, f := range m.filters {
		inChain[f.name] = true
		if _, ok := f.msg.(*wasmfilterv3.Wasm); ok && wasmName == "" {
			wasmName = f.name
		}
	}
	prefixes := pc.PathPrefixes
	if len(prefixes) == 0 {
		prefixes = DefaultPluginConfig().PathPrefixes // the configuration could not be read
	}
	for _, vh := range rc.GetVirtualHosts() {
		vpath := fmt.Sprintf("%s.route_config.virtual_hosts[%s]", m.path, vh.GetName())
		checkPerFilterKeys(vh.GetTypedPerFilterConfig(), inChain, vpath, ps)
		for i, r := range vh.GetRoutes() {
			rpath := fmt.Sprintf("%s.routes[%d %s]", vpath, i, describeMatch(r.GetMatch()))
			checkPerFilterKeys(r.GetTypedPerFilterConfig(), inChain, rpath, ps)
			clusters := routeClusters(r, v, rpath, inChain, ps)
			toDFP := slices.ContainsFunc(clusters, func(c string) bool { _, ok := dfp[c]; return ok })
			wasmOff := wasmName != "" && wasmDisabled(v, r, vh, wasmName, rpath)
			if toDFP {
				checkDFPRoute(r.GetMatch(), prefixes, rpath, ps)
				if wasmOff {
					ps.add(RuleWasmPerRoute, rpath+".typed_per_filter_config",
						"the wasm filter is disabled on a route to the DFP cluster; the DFP would forward to the client's own Host. Keep it enabled")
				}
			} else if wasmName != "" && !wasmOff {
				ps.add(RuleWasmPerRoute, rpath+".typed_per_filter_config",
					"disable the wasm filter here (%s: envoy.config.route.v3.FilterConfig{disabled: true}); it is needed only on routes to the DFP cluster", wasmName)
			}
			if pc.Registrar.Cluster != "" && slices.Contains(clusters, pc.Registrar.Cluster) &&
				r.GetMatch().GetPathSeparatedPrefix() != registrarPrefix {
				ps.add(RuleRegistrarRoutes, rpath+".match",
					"a public route to the registrar must match path_separated_prefix %s only; anything wider also exposes /v1 (the sync's API), /metrics and /healthz", registrarPrefix)
			}
		}
	}
}

// checkDFPRoute: the wasm router acts only on its path prefixes, segment-wise and
// case-sensitively; any other request reaching the DFP keeps the client's own Host.
func checkDFPRoute(match *routev3.RouteMatch, prefixes []string, path string, ps *problems) {
	sep := match.GetPathSeparatedPrefix()
	if !slices.Contains(prefixes, sep) {
		ps.add(RuleDFPRoutes, path+".match",
			"only path_separated_prefix %v (the plugin's path_prefixes) may route to the DFP cluster; "+
				"elsewhere the wasm router does not act and the DFP would forward to the client's own Host", prefixes)
	}
	if cs := match.GetCaseSensitive(); cs != nil && !cs.GetValue() {
		ps.add(RuleDFPRoutes, path+".match.case_sensitive",
			"a case-insensitive match lets /SYS reach the DFP, but the wasm router matches case-sensitively; remove case_sensitive")
	}
}

// routeClusters returns the clusters a route can send to, reporting unknown ones.
func routeClusters(r *routev3.Route, v *view, path string, inChain map[string]bool, ps *problems) []string {
	ra := r.GetRoute()
	if ra == nil {
		return nil // direct_response, redirect, ...: no upstream
	}
	var names []string
	switch {
	case ra.GetCluster() != "":
		names = []string{ra.GetCluster()}
	case ra.GetWeightedClusters() != nil:
		for i, wc := range ra.GetWeightedClusters().GetClusters() {
			names = append(names, wc.GetName())
			checkPerFilterKeys(wc.GetTypedPerFilterConfig(), inChain, fmt.Sprintf("%s.route.weighted_clusters.clusters[%d]", path, i), ps)
		}
	default:
		ps.add(RuleRouteCluster, path+".route", "the route picks its cluster at run time, which cannot be checked offline; name a cluster")
	}
	for _, n := range names {
		if _, ok := v.clusters[n]; !ok {
			ps.add(RuleRouteCluster, path+".route", "cluster %q is not defined in static_resources.clusters", n)
		}
	}
	return names
}

func checkPerFilterKeys(cfg map[string]*anypb.Any, inChain map[string]bool, path string, ps *problems) {
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		if !inChain[k] {
			ps.add(RulePerFilterConfig, path+".typed_per_filter_config["+k+"]",
				"%q is not a filter in this HTTP filter chain, so Envoy would ignore or refuse it; use the filter's name from http_filters", k)
		}
	}
}

// wasmDisabled reports whether the route (or, when it says nothing, its virtual host)
// turns the wasm filter off.
func wasmDisabled(v *view, r *routev3.Route, vh *routev3.VirtualHost, wasmName, path string) bool {
	a, ok := r.GetTypedPerFilterConfig()[wasmName]
	if !ok {
		a = vh.GetTypedPerFilterConfig()[wasmName]
	}
	fc, ok := v.unpack(a, path+".typed_per_filter_config["+wasmName+"]").(*routev3.FilterConfig)
	return ok && fc.GetDisabled()
}

func describeMatch(m *routev3.RouteMatch) string {
	switch {
	case m.GetPathSeparatedPrefix() != "":
		return m.GetPathSeparatedPrefix()
	case m.GetPrefix() != "":
		return "prefix " + m.GetPrefix()
	case m.GetPath() != "":
		return "path " + m.GetPath()
	}
	return "other match"
}
