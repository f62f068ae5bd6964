package envoycheck

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	commondfpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/dynamic_forward_proxy/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"switchyard/internal/envoyconfig"
	"switchyard/internal/pluginconfig"
)

// wantChain is the HTTP filter chain, in order: CORS answers preflights first, the
// wasm router picks the target before the DFP resolves it, the router is last.
var wantChain = []struct{ name, typeName string }{
	{"envoy.filters.http.cors", "envoy.extensions.filters.http.cors.v3.Cors"},
	{"envoy.filters.http.wasm", "envoy.extensions.filters.http.wasm.v3.Wasm"},
	{"envoy.filters.http.dynamic_forward_proxy", "envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig"},
	{"envoy.filters.http.router", "envoy.extensions.filters.http.router.v3.Router"},
}

func checkChain(m envoyconfig.Manager, ps *problems) {
	var got, want []string
	for _, f := range m.Filters {
		got = append(got, f.Name+" ("+f.TypeName+")")
	}
	for _, w := range wantChain {
		want = append(want, w.name+" ("+w.typeName+")")
	}
	if !slices.Equal(got, want) {
		ps.add(RuleFilterOrder, m.Path+".http_filters",
			"HTTP filters are [%s]; want exactly [%s] in that order", strings.Join(got, ", "), strings.Join(want, ", "))
	}
}

func checkRoutes(m envoyconfig.Manager, v *view, dfp map[string]*commondfpv3.DnsCacheConfig, pc pluginconfig.Config, ps *problems) {
	rc := m.HCM.GetRouteConfig()
	if rc == nil {
		ps.add(RuleRouteConfig, m.Path, "route_config must be inline; routes from RDS cannot be checked offline")
		return
	}
	inChain := map[string]bool{}
	wasmName := ""
	for _, f := range m.Filters {
		inChain[f.Name] = true
		if _, ok := f.Msg.(*wasmfilterv3.Wasm); ok && wasmName == "" {
			wasmName = f.Name
		}
	}
	prefixes := pc.PathPrefixes
	if len(prefixes) == 0 {
		prefixes = pluginconfig.Default().PathPrefixes // the configuration could not be read
	}
	for _, vh := range rc.GetVirtualHosts() {
		vpath := fmt.Sprintf("%s.route_config.virtual_hosts[%s]", m.Path, vh.GetName())
		checkPerFilterKeys(vh.GetTypedPerFilterConfig(), inChain, vpath, ps)
		for i, r := range vh.GetRoutes() {
			rpath := fmt.Sprintf("%s.routes[%d %s]", vpath, i, describeMatch(r.GetMatch()))
			checkPerFilterKeys(r.GetTypedPerFilterConfig(), inChain, rpath, ps)
			clusters := routeClusters(r, v, rpath, inChain, ps)
			toDFP := slices.ContainsFunc(clusters, func(c string) bool { _, ok := dfp[c]; return ok })
			wasmOff := wasmName != "" && wasmDisabled(v, r, vh, wasmName, rpath)
			if toDFP {
				checkDFPRoute(r.GetMatch(), prefixes, rpath, ps)
				// The router reads the first server-name header; a client can send two.
				// Only a header that never reaches the target keeps a target from
				// reading another name than the one the request was routed by.
				header := pc.Header
				if header == "" {
					header = pluginconfig.Default().Header
				}
				if !pc.StripHeader && !slices.ContainsFunc(r.GetRequestHeadersToRemove(), func(h string) bool { return strings.EqualFold(h, header) }) {
					ps.add(RuleNameHeader, rpath+".request_headers_to_remove",
						"add %s here (or set strip_header: true in the plugin configuration): with two %s headers the router routes by the first, and the target could read the other", header, header)
				}
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
		if _, ok := v.Clusters[n]; !ok {
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
