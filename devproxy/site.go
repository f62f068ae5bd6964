package devproxy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	commondfpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/dynamic_forward_proxy/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	dfpfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/dynamic_forward_proxy/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	downconnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"switchyard/internal/envoyconfig"
)

// site is what the dev proxy serves, read from an Envoy bootstrap: one listener with
// one HTTP connection manager, its routes in order, the wasm filter's settings and the
// clusters the routes name. Defaults are Envoy's where the file says nothing.
type site struct {
	hcm      hcmSettings
	vhosts   []*vhost
	clusters map[string]*clusterSpec
	wasm     *wasmSettings // nil: no wasm filter in the chain
	// maxConnections is the overload manager's downstream connection cap; 0: none.
	maxConnections int
	// dnsFilter drops resolved addresses of DFP targets (resolved_address_filter).
	dnsFilter *addressMatcher
	notes     []string // settings accepted but not reproduced, for the start-up log
}

type hcmSettings struct {
	useRemoteAddress        bool
	normalizePath           bool
	mergeSlashes            bool
	escapedSlashes          hcmv3.HttpConnectionManager_PathWithEscapedSlashesAction
	underscores             corev3.HttpProtocolOptions_HeadersWithUnderscoresAction
	requestHeadersTimeout   time.Duration // 0: none (Envoy's default)
	requestTimeout          time.Duration // 0: none (Envoy's default)
	streamIdleTimeout       time.Duration // Envoy's default 5 min; 0: none
	connectionIdleTimeout   time.Duration // common_http_protocol_options.idle_timeout; Envoy's default 1 h
	maxHeaders              int           // Envoy's default 100
	maxHeaderBytes          int           // max_request_headers_kb; Envoy's default 60 KiB
	websocket, websocketSet bool          // the HCM's websocket upgrade_config
	corsFilter              string        // the CORS filter's name in the chain, "" when absent
	wasmFilter              string        // the wasm filter's name in the chain, "" when absent
}

type vhost struct {
	name    string
	domains []string
	routes  []*route
}

type matchKind int

const (
	matchPrefix matchKind = iota
	matchPath
	matchSeparatedPrefix
)

type route struct {
	desc        string // how the file matches it, for messages
	kind        matchKind
	value       string
	insensitive bool
	cluster     string
	timeout     time.Duration // 0: no timer
	idleTimeout time.Duration // 0: the HCM's stream_idle_timeout
	idleSet     bool
	websocket   bool
	cors        *corsPolicy
	wasm        bool
	retries     int // retry_policy num_retries for connect-failure; 0: none
	removeReq   []string
	removeResp  []string
}

type wasmSettings struct {
	vmID                             string
	syncRoot, routerRoot             string
	syncConfig, routerConfig         []byte
	syncPluginName, routerPluginName string
	hasSync                          bool
}

type clusterSpec struct {
	name           string
	dfp            bool
	connectTimeout time.Duration
	idleTimeout    time.Duration // upstream connection idle timeout; Envoy's default 1 h
	health         *healthCheck  // nil: no active health check
}

type healthCheck struct {
	interval, timeout  time.Duration
	unhealthy, healthy int
	httpPath, httpHost string // "" path: a TCP connect check
}

// Envoy's defaults for what the file leaves unset.
const (
	defaultStreamIdle     = 5 * time.Minute
	defaultRouteTimeout   = 15 * time.Second
	defaultMaxHeaders     = 100
	defaultMaxHeaderKB    = 60
	defaultConnectTimeout = 5 * time.Second
	defaultConnIdle       = time.Hour
)

// readSite builds the site from bs, as envoyconfig.Inspect unpacks it. Anything of
// the file the dev proxy would not serve as Envoy does is an error that names it;
// every error is collected.
func readSite(bs *bootstrapv3.Bootstrap) (*site, error) {
	unknown, notes := checkFeatures(bs)
	if len(unknown) > 0 {
		return nil, fmt.Errorf("the Envoy config uses what the dev proxy does not implement (remove it, or run Envoy): %s",
			strings.Join(unknown, "; "))
	}
	cfg := envoyconfig.Inspect(bs)
	s := &site{clusters: map[string]*clusterSpec{}, notes: notes}
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, f := range cfg.Faults {
		fail("%s: cannot unpack %q: %v", f.Path, f.TypeURL, f.Err)
	}

	s.readWasmService(cfg, fail)
	for _, rm := range bs.GetOverloadManager().GetResourceMonitors() {
		dc, ok := unpack(rm.GetTypedConfig()).(*downconnv3.DownstreamConnectionsConfig)
		if !ok {
			fail("overload_manager.resource_monitors[%s]: only envoy.resource_monitors.global_downstream_max_connections is implemented", rm.GetName())
			continue
		}
		s.maxConnections = int(dc.GetMaxActiveDownstreamConnections())
	}
	for _, c := range cfg.ClusterList {
		s.readCluster(c, fail)
	}
	ls := bs.GetStaticResources().GetListeners()
	if len(ls) != 1 || len(ls[0].GetFilterChains()) != 1 || len(ls[0].GetFilterChains()[0].GetFilters()) != 1 {
		fail("static_resources.listeners: the dev proxy serves exactly one listener with one filter chain holding one filter (the HTTP connection manager)")
	} else if len(cfg.Managers) != 1 {
		fail("listener %s: filter %s is not an HTTP connection manager", ls[0].GetName(), ls[0].GetFilterChains()[0].GetFilters()[0].GetName())
	} else {
		s.readHCM(cfg.Managers[0], fail)
	}
	// Without the envoy.bootstrap.wasm singleton the filter runs router-only: its router
	// VMs elect one poller through the lease in shared data (README, "How the table is
	// kept"), as under Istio and Envoy Gateway.
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("the Envoy config asks for what the dev proxy does not do:\n%w", err)
	}
	return s, nil
}

func (s *site) readWasmService(cfg *envoyconfig.Config, fail func(string, ...any)) {
	for _, ext := range cfg.Extensions {
		svc, ok := ext.Msg.(*wasmv3.WasmService)
		if !ok {
			fail("bootstrap_extensions[%s]: only envoy.bootstrap.wasm is implemented", ext.Name)
			continue
		}
		if s.wasm != nil && s.wasm.hasSync {
			fail("bootstrap_extensions[%s]: the dev proxy runs one wasm service", ext.Name)
			continue
		}
		if !svc.GetSingleton() {
			fail("bootstrap_extensions[%s]: a per-worker wasm service is not implemented; set singleton: true", ext.Name)
		}
		pc := svc.GetConfig()
		checkFailurePolicy(pc, "bootstrap_extensions["+ext.Name+"]", fail)
		conf, err := envoyconfig.ConfigurationBytes(pc)
		if err != nil {
			fail("bootstrap_extensions[%s]: %v", ext.Name, err)
		}
		if s.wasm == nil {
			s.wasm = &wasmSettings{}
		}
		s.wasm.hasSync = true
		s.wasm.syncRoot, s.wasm.syncConfig, s.wasm.syncPluginName = pc.GetRootId(), conf, pc.GetName()
		s.wasm.vmID = pc.GetVmConfig().GetVmId()
	}
}

func checkFailurePolicy(pc *wasmv3.PluginConfig, where string, fail func(string, ...any)) {
	if fp := pc.GetFailurePolicy(); fp != wasmv3.FailurePolicy_UNSPECIFIED && fp != wasmv3.FailurePolicy_FAIL_CLOSED {
		fail("%s.config.failure_policy %s: only FAIL_CLOSED (a failed VM answers 503, then is replaced) is implemented", where, fp)
	}
}

func (s *site) readHCM(m envoyconfig.Manager, fail func(string, ...any)) {
	h := m.HCM
	switch h.GetCodecType() {
	case hcmv3.HttpConnectionManager_AUTO, hcmv3.HttpConnectionManager_HTTP1:
	default:
		fail("codec_type %s: the dev proxy serves HTTP/1.1 (AUTO or HTTP1)", h.GetCodecType())
	}
	st := &s.hcm
	st.useRemoteAddress = h.GetUseRemoteAddress().GetValue()
	st.normalizePath = h.GetNormalizePath().GetValue()
	st.mergeSlashes = h.GetMergeSlashes()
	st.escapedSlashes = h.GetPathWithEscapedSlashesAction()
	st.underscores = h.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction()
	st.requestHeadersTimeout = duration(h.GetRequestHeadersTimeout(), 0)
	st.requestTimeout = duration(h.GetRequestTimeout(), 0)
	st.streamIdleTimeout = duration(h.GetStreamIdleTimeout(), defaultStreamIdle)
	st.connectionIdleTimeout = duration(h.GetCommonHttpProtocolOptions().GetIdleTimeout(), defaultConnIdle)
	st.maxHeaders = defaultMaxHeaders
	if v := h.GetCommonHttpProtocolOptions().GetMaxHeadersCount(); v != nil {
		st.maxHeaders = int(v.GetValue())
	}
	st.maxHeaderBytes = defaultMaxHeaderKB << 10
	if v := h.GetMaxRequestHeadersKb(); v != nil {
		st.maxHeaderBytes = int(v.GetValue()) << 10
	}
	for _, u := range h.GetUpgradeConfigs() {
		if !strings.EqualFold(u.GetUpgradeType(), "websocket") {
			fail("upgrade_configs: upgrade_type %q is not implemented (websocket is)", u.GetUpgradeType())
			continue
		}
		st.websocketSet = true
		st.websocket = u.GetEnabled() == nil || u.GetEnabled().GetValue()
	}

	// The chain: CORS, wasm, DFP and router are implemented, in any order Envoy
	// accepts (internal/testkit/envoycheck checks the order this project needs).
	sawRouter := false
	for _, f := range m.Filters {
		if f.Msg == nil {
			fail("http_filters[%s]: no typed_config the dev proxy can read", f.Name)
			continue
		}
		switch c := f.Msg.(type) {
		case *corsv3.Cors:
			st.corsFilter = f.Name
		case *wasmfilterv3.Wasm:
			if st.wasmFilter != "" {
				fail("http_filters[%s]: the dev proxy runs one wasm filter", f.Name)
				continue
			}
			st.wasmFilter = f.Name
			pc := c.GetConfig()
			checkFailurePolicy(pc, "http_filters["+f.Name+"]", fail)
			conf, err := envoyconfig.ConfigurationBytes(pc)
			if err != nil {
				fail("http_filters[%s]: %v", f.Name, err)
			}
			if s.wasm == nil {
				s.wasm = &wasmSettings{}
			}
			if s.wasm.vmID != "" && pc.GetVmConfig().GetVmId() != s.wasm.vmID {
				fail("http_filters[%s]: vm_id %q differs from the wasm service's %q; the dev proxy runs both roots on one vm_id",
					f.Name, pc.GetVmConfig().GetVmId(), s.wasm.vmID)
			}
			s.wasm.vmID = pc.GetVmConfig().GetVmId()
			s.wasm.routerRoot, s.wasm.routerConfig, s.wasm.routerPluginName = pc.GetRootId(), conf, pc.GetName()
		case *dfpfilterv3.FilterConfig:
			s.dnsFilter = readAddressMatcher(c.GetDnsCacheConfig(), fail)
		case *routerv3.Router:
			sawRouter = true
		default:
			fail("http_filters[%s]: %s is not implemented (cors, wasm, dynamic_forward_proxy and router are)", f.Name, f.TypeName)
		}
	}
	if !sawRouter {
		fail("http_filters: no envoy.filters.http.router; Envoy would forward nothing")
	}

	rc := h.GetRouteConfig()
	if rc == nil {
		fail("route_config: the dev proxy needs the routes inline (RDS is not implemented)")
		return
	}
	for _, vh := range rc.GetVirtualHosts() {
		v := &vhost{name: vh.GetName(), domains: vh.GetDomains()}
		for _, r := range vh.GetRoutes() {
			if rt := s.readRoute(vh, r, fail); rt != nil {
				v.routes = append(v.routes, rt)
			}
		}
		s.vhosts = append(s.vhosts, v)
	}
}

func (s *site) readRoute(vh *routev3.VirtualHost, r *routev3.Route, fail func(string, ...any)) *route {
	m := r.GetMatch()
	rt := &route{insensitive: m.GetCaseSensitive() != nil && !m.GetCaseSensitive().GetValue()}
	switch {
	case m.GetPathSeparatedPrefix() != "":
		rt.kind, rt.value, rt.desc = matchSeparatedPrefix, m.GetPathSeparatedPrefix(), "path_separated_prefix "+m.GetPathSeparatedPrefix()
	case m.GetPath() != "":
		rt.kind, rt.value, rt.desc = matchPath, m.GetPath(), "path "+m.GetPath()
	case m.GetPathSpecifier() != nil:
		if p, ok := m.GetPathSpecifier().(*routev3.RouteMatch_Prefix); ok {
			rt.kind, rt.value, rt.desc = matchPrefix, p.Prefix, "prefix "+p.Prefix
			break
		}
		fallthrough
	default:
		fail("virtual_hosts[%s]: a route matches by something other than prefix, path or path_separated_prefix", vh.GetName())
		return nil
	}
	where := fmt.Sprintf("virtual_hosts[%s].routes[%s]", vh.GetName(), rt.desc)
	ra := r.GetRoute()
	if ra == nil {
		fail("%s: only route actions to a cluster are implemented", where)
		return nil
	}
	rt.cluster = ra.GetCluster()
	if rt.cluster == "" {
		fail("%s: only a named cluster is implemented (not weighted_clusters or cluster_header)", where)
		return nil
	}
	if _, ok := s.clusters[rt.cluster]; !ok {
		fail("%s: cluster %q is not defined", where, rt.cluster)
	}
	rt.timeout = duration(ra.GetTimeout(), defaultRouteTimeout)
	if ra.GetIdleTimeout() != nil {
		rt.idleTimeout, rt.idleSet = duration(ra.GetIdleTimeout(), 0), true
	}
	rt.websocket = s.hcm.websocketSet && s.hcm.websocket
	for _, u := range ra.GetUpgradeConfigs() {
		if !strings.EqualFold(u.GetUpgradeType(), "websocket") {
			fail("%s.route.upgrade_configs: upgrade_type %q is not implemented (websocket is)", where, u.GetUpgradeType())
			continue
		}
		rt.websocket = u.GetEnabled() == nil || u.GetEnabled().GetValue()
	}
	if rp := ra.GetRetryPolicy(); rp != nil {
		for _, on := range strings.Split(rp.GetRetryOn(), ",") {
			if on = strings.TrimSpace(on); on != "connect-failure" {
				fail("%s.route.retry_policy: retry_on %q is not implemented (connect-failure is)", where, on)
			}
		}
		rt.retries = 1
		if n := rp.GetNumRetries(); n != nil {
			rt.retries = int(n.GetValue())
		}
	}
	rt.removeReq = lowerAll(r.GetRequestHeadersToRemove())
	rt.removeResp = lowerAll(r.GetResponseHeadersToRemove())

	perFilter := func(name string) *anypb.Any {
		if a, ok := r.GetTypedPerFilterConfig()[name]; ok {
			return a
		}
		return vh.GetTypedPerFilterConfig()[name]
	}
	for _, k := range append(mapKeys(r.GetTypedPerFilterConfig()), mapKeys(vh.GetTypedPerFilterConfig())...) {
		if k != s.hcm.corsFilter && k != s.hcm.wasmFilter {
			fail("%s.typed_per_filter_config[%s]: not a CORS or wasm filter of the chain; per-route settings of other filters are not implemented", where, k)
		}
	}
	if s.hcm.corsFilter != "" {
		if a := perFilter(s.hcm.corsFilter); a != nil {
			if cp, ok := unpack(a).(*corsv3.CorsPolicy); !ok {
				fail("%s.typed_per_filter_config[%s]: want an envoy.extensions.filters.http.cors.v3.CorsPolicy", where, s.hcm.corsFilter)
			} else {
				rt.cors = readCORS(cp)
			}
		}
	}
	if s.hcm.wasmFilter != "" {
		rt.wasm = true
		if a := perFilter(s.hcm.wasmFilter); a != nil {
			fc, ok := unpack(a).(*routev3.FilterConfig)
			if !ok {
				fail("%s.typed_per_filter_config[%s]: only envoy.config.route.v3.FilterConfig{disabled} is implemented for the wasm filter", where, s.hcm.wasmFilter)
			}
			rt.wasm = !fc.GetDisabled()
		}
	}
	return rt
}

func (s *site) readCluster(lc *envoyconfig.Cluster, fail func(string, ...any)) {
	c := lc.Msg
	cs := &clusterSpec{
		name:           c.GetName(),
		connectTimeout: duration(c.GetConnectTimeout(), defaultConnectTimeout),
		idleTimeout:    defaultConnIdle,
	}
	where := lc.Path
	if ct := c.GetClusterType(); ct != nil {
		cc := lc.DFP
		if ct.GetName() != "envoy.clusters.dynamic_forward_proxy" || cc == nil {
			fail("%s.cluster_type %q: only envoy.clusters.dynamic_forward_proxy is implemented", where, ct.GetName())
		}
		if cc.GetAllowInsecureClusterOptions() {
			fail("%s: allow_insecure_cluster_options is not implemented", where)
		}
		cs.dfp = true
		if c.GetLbPolicy() != clusterv3.Cluster_CLUSTER_PROVIDED {
			fail("%s.lb_policy %s: a dynamic forward proxy cluster uses CLUSTER_PROVIDED", where, c.GetLbPolicy())
		}
	} else {
		if c.GetType() != clusterv3.Cluster_STATIC && c.GetType() != clusterv3.Cluster_STRICT_DNS && c.GetType() != clusterv3.Cluster_LOGICAL_DNS {
			fail("%s.type %s: the dev proxy implements STATIC, STRICT_DNS and LOGICAL_DNS clusters", where, c.GetType())
		}
		if p := c.GetLbPolicy(); p != clusterv3.Cluster_ROUND_ROBIN {
			fail("%s.lb_policy %s: only ROUND_ROBIN is implemented", where, p)
		}
	}
	if _, ok := c.GetTypedExtensionProtocolOptions()[envoyconfig.HTTPOptionsKey]; ok {
		po := lc.HTTPOptions
		if po == nil {
			fail("%s.typed_extension_protocol_options[%s]: want that type", where, envoyconfig.HTTPOptionsKey)
		}
		if po.GetExplicitHttpConfig() != nil && po.GetExplicitHttpConfig().GetHttpProtocolOptions() == nil {
			fail("%s: only explicit HTTP/1.1 toward upstreams is implemented", where)
		}
		cs.idleTimeout = duration(po.GetCommonHttpProtocolOptions().GetIdleTimeout(), defaultConnIdle)
	}
	for k := range c.GetTypedExtensionProtocolOptions() {
		if k != envoyconfig.HTTPOptionsKey {
			fail("%s.typed_extension_protocol_options[%s] is not implemented", where, k)
		}
	}
	switch hcs := c.GetHealthChecks(); {
	case len(hcs) > 1:
		fail("%s.health_checks: the dev proxy runs one health check per cluster", where)
	case len(hcs) == 1:
		hc := hcs[0]
		cs.health = &healthCheck{
			interval:  duration(hc.GetInterval(), 5*time.Second),
			timeout:   duration(hc.GetTimeout(), time.Second),
			unhealthy: int(hc.GetUnhealthyThreshold().GetValue()),
			healthy:   int(hc.GetHealthyThreshold().GetValue()),
		}
		if h := hc.GetHttpHealthCheck(); h != nil {
			cs.health.httpPath, cs.health.httpHost = h.GetPath(), h.GetHost()
			if cs.health.httpPath == "" {
				fail("%s.health_checks[0].http_health_check: set path", where)
			}
		} else if hc.GetTcpHealthCheck() == nil {
			fail("%s.health_checks[0]: only tcp_health_check and http_health_check are implemented", where)
		}
		cs.health.unhealthy = max(cs.health.unhealthy, 1)
		cs.health.healthy = max(cs.health.healthy, 1)
	}
	s.clusters[cs.name] = cs
}

// addressMatcher is resolved_address_filter: an address that matches is dropped.
type addressMatcher struct {
	ranges []netip.Prefix
	invert bool
}

func (m *addressMatcher) matches(ip netip.Addr) bool {
	if m == nil {
		return false
	}
	in := false
	for _, r := range m.ranges {
		if r.Contains(ip.Unmap()) {
			in = true
			break
		}
	}
	return in != m.invert
}

func readAddressMatcher(dc *commondfpv3.DnsCacheConfig, fail func(string, ...any)) *addressMatcher {
	f := dc.GetResolvedAddressFilter()
	if f == nil {
		return nil
	}
	m := &addressMatcher{invert: f.GetInvertMatch()}
	for _, r := range f.GetRanges() {
		ip, err := netip.ParseAddr(r.GetAddressPrefix())
		if err != nil {
			fail("dns_cache_config.resolved_address_filter: %q is not an IP address", r.GetAddressPrefix())
			continue
		}
		bits := int(r.GetPrefixLen().GetValue())
		if ip.Is4In6() && bits >= 96 { // an IPv4-mapped range is the IPv4 range it carries
			ip, bits = ip.Unmap(), bits-96
		}
		p, err := ip.Prefix(bits)
		if err != nil {
			fail("dns_cache_config.resolved_address_filter: prefix_len %d does not fit %s", r.GetPrefixLen().GetValue(), ip)
			continue
		}
		m.ranges = append(m.ranges, p)
	}
	return m
}

// corsPolicy is the CORS filter's per-route policy.
type corsPolicy struct {
	origins                       []*matcherv3.StringMatcher
	methods, headers, expose, age string
	credentials                   bool
	forwardNotMatching            bool
}

func readCORS(cp *corsv3.CorsPolicy) *corsPolicy {
	return &corsPolicy{
		origins:            cp.GetAllowOriginStringMatch(),
		methods:            cp.GetAllowMethods(),
		headers:            cp.GetAllowHeaders(),
		expose:             cp.GetExposeHeaders(),
		age:                cp.GetMaxAge(),
		credentials:        cp.GetAllowCredentials().GetValue(),
		forwardNotMatching: cp.GetForwardNotMatchingPreflights() == nil || cp.GetForwardNotMatchingPreflights().GetValue(),
	}
}

// allowed reports whether origin matches one of the policy's matchers.
func (c *corsPolicy) allowed(origin string) bool {
	for _, m := range c.origins {
		v, o := origin, ""
		switch p := m.GetMatchPattern().(type) {
		case *matcherv3.StringMatcher_Exact:
			o = p.Exact
		case *matcherv3.StringMatcher_Prefix:
			o = p.Prefix
		case *matcherv3.StringMatcher_Suffix:
			o = p.Suffix
		case *matcherv3.StringMatcher_Contains:
			o = p.Contains
		}
		if m.GetIgnoreCase() {
			v, o = strings.ToLower(v), strings.ToLower(o)
		}
		var ok bool
		switch m.GetMatchPattern().(type) {
		case *matcherv3.StringMatcher_Exact:
			ok = v == o
		case *matcherv3.StringMatcher_Prefix:
			ok = strings.HasPrefix(v, o)
		case *matcherv3.StringMatcher_Suffix:
			ok = strings.HasSuffix(v, o)
		case *matcherv3.StringMatcher_Contains:
			ok = strings.Contains(v, o)
		}
		if ok {
			return true
		}
	}
	return false
}

// unpack returns the message inside a; nil when a is nil or does not unpack.
func unpack(a *anypb.Any) proto.Message {
	if a == nil {
		return nil
	}
	m, _ := envoyconfig.Unpack(a)
	return m
}

func duration(d *durationpb.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.AsDuration()
}

func lowerAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(s)
	}
	return out
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// matches reports whether the route takes path (without its query).
func (r *route) matches(path string) bool {
	p, v := path, r.value
	if r.insensitive {
		p, v = strings.ToLower(p), strings.ToLower(v)
	}
	switch r.kind {
	case matchPath:
		return p == v
	case matchSeparatedPrefix:
		return strings.HasPrefix(p, v) && (len(p) == len(v) || p[len(v)] == '/')
	}
	return strings.HasPrefix(p, v)
}

// matchHost reports whether a virtual host's domains take host (Envoy: exact, "*",
// "*.suffix" or "prefix.*", case-insensitive; a port in host is tried with and
// without).
func (v *vhost) matchHost(host string) bool {
	host = strings.ToLower(host)
	bare := host
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		bare = host[:i]
	}
	for _, d := range v.domains {
		d = strings.ToLower(d)
		for _, h := range []string{host, bare} {
			switch {
			case d == "*", d == h:
				return true
			case strings.HasPrefix(d, "*") && strings.HasSuffix(h, d[1:]) && len(h) > len(d)-1:
				return true
			case strings.HasSuffix(d, "*") && strings.HasPrefix(h, d[:len(d)-1]) && len(h) > len(d)-1:
				return true
			}
		}
	}
	return false
}

// routeFor returns the first route of the first virtual host that takes host and
// path, as Envoy matches them; nil when none does.
func (s *site) routeFor(host, path string) *route {
	for _, v := range s.vhosts {
		if !v.matchHost(host) {
			continue
		}
		for _, r := range v.routes {
			if r.matches(path) {
				return r
			}
		}
		return nil
	}
	return nil
}

// LoadEnvoyConfig reads an Envoy bootstrap file strictly (envoyconfig.Load: an unknown
// field or @type is an error).
func LoadEnvoyConfig(path string) (*bootstrapv3.Bootstrap, error) { return envoyconfig.Load(path) }
