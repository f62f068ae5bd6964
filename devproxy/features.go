package devproxy

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"switchyard/internal/envoyconfig"
)

// features lists every field of an Envoy bootstrap the dev proxy knows, as
// "<message full name>.<field name>". A field set in the file that is not listed here
// makes New refuse the file, naming the field: the dev proxy must never quietly serve
// something other than what the file says. The value is "" for a field the dev proxy
// reproduces, or why it is accepted without being reproduced (logged at start). Enum
// values and shapes the dev proxy does not reproduce (an lb_policy, a codec, a match
// kind) are refused where the file is read (site.go).
var features = map[string]string{
	// Bootstrap.
	"envoy.config.bootstrap.v3.Bootstrap.admin":                                                                                  "",
	"envoy.config.bootstrap.v3.Bootstrap.bootstrap_extensions":                                                                   "",
	"envoy.config.bootstrap.v3.Bootstrap.static_resources":                                                                       "",
	"envoy.config.bootstrap.v3.Bootstrap.overload_manager":                                                                       "",
	"envoy.config.bootstrap.v3.Admin.address":                                                                                    "the admin address comes from -admin",
	"envoy.config.bootstrap.v3.Bootstrap.StaticResources.listeners":                                                              "",
	"envoy.config.bootstrap.v3.Bootstrap.StaticResources.clusters":                                                               "",
	"envoy.config.overload.v3.OverloadManager.resource_monitors":                                                                 "",
	"envoy.config.overload.v3.ResourceMonitor.name":                                                                              "",
	"envoy.config.overload.v3.ResourceMonitor.typed_config":                                                                      "",
	"envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig.max_active_downstream_connections": "",
	"envoy.config.core.v3.Address.socket_address":                                                                                "",
	"envoy.config.core.v3.SocketAddress.address":                                                                                 "",
	"envoy.config.core.v3.SocketAddress.port_value":                                                                              "",
	"envoy.config.core.v3.TypedExtensionConfig.name":                                                                             "",
	"envoy.config.core.v3.TypedExtensionConfig.typed_config":                                                                     "",
	"envoy.extensions.wasm.v3.WasmService.singleton":                                                                             "",
	"envoy.extensions.wasm.v3.WasmService.config":                                                                                "",
	"envoy.extensions.wasm.v3.PluginConfig.name":                                                                                 "",
	"envoy.extensions.wasm.v3.PluginConfig.root_id":                                                                              "",
	"envoy.extensions.wasm.v3.PluginConfig.vm_config":                                                                            "",
	"envoy.extensions.wasm.v3.PluginConfig.configuration":                                                                        "",
	"envoy.extensions.wasm.v3.PluginConfig.failure_policy":                                                                       "",
	"envoy.extensions.wasm.v3.VmConfig.vm_id":                                                                                    "",
	"envoy.extensions.wasm.v3.VmConfig.runtime":                                                                                  "the module runs on wazero; its behaviour follows Envoy's V8 host",
	"envoy.extensions.wasm.v3.VmConfig.code":                                                                                     "the module comes from -wasm",
	"envoy.config.core.v3.AsyncDataSource.local":                                                                                 "",
	"envoy.config.core.v3.DataSource.filename":                                                                                   "",
	"envoy.config.listener.v3.Listener.name":                                                                                     "",
	"envoy.config.listener.v3.Listener.address":                                                                                  "the listening address comes from -listen",
	"envoy.config.listener.v3.Listener.per_connection_buffer_limit_bytes":                                                        "the dev proxy streams bodies through a fixed 32 KiB copy buffer",
	"envoy.config.listener.v3.Listener.filter_chains":                                                                            "",
	"envoy.config.listener.v3.FilterChain.filters":                                                                               "",
	"envoy.config.listener.v3.Filter.name":                                                                                       "",
	"envoy.config.listener.v3.Filter.typed_config":                                                                               "",

	// The HTTP connection manager.
	hcmName + ".stat_prefix":                                                   "",
	hcmName + ".codec_type":                                                    "",
	hcmName + ".use_remote_address":                                            "",
	hcmName + ".normalize_path":                                                "",
	hcmName + ".merge_slashes":                                                 "",
	hcmName + ".path_with_escaped_slashes_action":                              "",
	hcmName + ".common_http_protocol_options":                                  "",
	hcmName + ".request_headers_timeout":                                       "",
	hcmName + ".request_timeout":                                               "",
	hcmName + ".stream_idle_timeout":                                           "",
	hcmName + ".max_request_headers_kb":                                        "",
	hcmName + ".http2_protocol_options":                                        "the dev proxy serves HTTP/1.1 only",
	hcmName + ".upgrade_configs":                                               "",
	hcmName + ".access_log":                                                    "the dev proxy logs failures, not every request",
	hcmName + ".http_filters":                                                  "",
	hcmName + ".route_config":                                                  "",
	hcmName + ".UpgradeConfig.upgrade_type":                                    "",
	hcmName + ".UpgradeConfig.enabled":                                         "",
	"envoy.config.core.v3.HttpProtocolOptions.headers_with_underscores_action": "",
	"envoy.config.core.v3.HttpProtocolOptions.max_headers_count":               "",
	"envoy.config.core.v3.HttpProtocolOptions.idle_timeout":                    "",
	"envoy.config.core.v3.Http2ProtocolOptions.max_concurrent_streams":         "",
	"envoy.config.core.v3.Http2ProtocolOptions.initial_stream_window_size":     "",
	"envoy.config.core.v3.Http2ProtocolOptions.initial_connection_window_size": "",
	"envoy.config.accesslog.v3.AccessLog.name":                                 "",
	"envoy.config.accesslog.v3.AccessLog.typed_config":                         "",
	hcmPkg + ".HttpFilter.name":                                                "",
	hcmPkg + ".HttpFilter.typed_config":                                        "",

	// HTTP filters.
	"envoy.extensions.filters.http.wasm.v3.Wasm.config":                                               "",
	"envoy.extensions.filters.http.router.v3.Router.suppress_envoy_headers":                           "the dev proxy adds no x-envoy-* headers",
	"envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig.dns_cache_config":            "",
	"envoy.extensions.common.dynamic_forward_proxy.v3.DnsCacheConfig.name":                            "",
	"envoy.extensions.common.dynamic_forward_proxy.v3.DnsCacheConfig.dns_lookup_family":               "the dev proxy resolves names with Go's resolver",
	"envoy.extensions.common.dynamic_forward_proxy.v3.DnsCacheConfig.max_hosts":                       "the dev proxy keeps no DNS cache",
	"envoy.extensions.common.dynamic_forward_proxy.v3.DnsCacheConfig.resolved_address_filter":         "",
	"envoy.type.matcher.v3.AddressMatcher.ranges":                                                     "",
	"envoy.type.matcher.v3.AddressMatcher.invert_match":                                               "",
	"xds.core.v3.CidrRange.address_prefix":                                                            "",
	"xds.core.v3.CidrRange.prefix_len":                                                                "",
	"envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig.dns_cache_config":               "",
	"envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig.allow_insecure_cluster_options": "",

	// Routes.
	"envoy.config.route.v3.RouteConfiguration.name":                "",
	"envoy.config.route.v3.RouteConfiguration.virtual_hosts":       "",
	"envoy.config.route.v3.VirtualHost.name":                       "",
	"envoy.config.route.v3.VirtualHost.domains":                    "",
	"envoy.config.route.v3.VirtualHost.routes":                     "",
	"envoy.config.route.v3.VirtualHost.typed_per_filter_config":    "",
	"envoy.config.route.v3.Route.name":                             "",
	"envoy.config.route.v3.Route.match":                            "",
	"envoy.config.route.v3.Route.route":                            "",
	"envoy.config.route.v3.Route.typed_per_filter_config":          "",
	"envoy.config.route.v3.Route.request_headers_to_remove":        "",
	"envoy.config.route.v3.Route.response_headers_to_remove":       "",
	"envoy.config.route.v3.RouteMatch.prefix":                      "",
	"envoy.config.route.v3.RouteMatch.path":                        "",
	"envoy.config.route.v3.RouteMatch.path_separated_prefix":       "",
	"envoy.config.route.v3.RouteMatch.case_sensitive":              "",
	"envoy.config.route.v3.RouteAction.cluster":                    "",
	"envoy.config.route.v3.RouteAction.timeout":                    "",
	"envoy.config.route.v3.RouteAction.idle_timeout":               "",
	"envoy.config.route.v3.RouteAction.upgrade_configs":            "",
	"envoy.config.route.v3.RouteAction.retry_policy":               "",
	"envoy.config.route.v3.RouteAction.UpgradeConfig.upgrade_type": "",
	"envoy.config.route.v3.RouteAction.UpgradeConfig.enabled":      "",
	"envoy.config.route.v3.RetryPolicy.retry_on":                   "",
	"envoy.config.route.v3.RetryPolicy.num_retries":                "",
	"envoy.config.route.v3.FilterConfig.disabled":                  "",
	corsName + ".allow_origin_string_match":                        "",
	corsName + ".allow_methods":                                    "",
	corsName + ".allow_headers":                                    "",
	corsName + ".expose_headers":                                   "",
	corsName + ".max_age":                                          "",
	corsName + ".allow_credentials":                                "",
	corsName + ".forward_not_matching_preflights":                  "",
	"envoy.type.matcher.v3.StringMatcher.exact":                    "",
	"envoy.type.matcher.v3.StringMatcher.prefix":                   "",
	"envoy.type.matcher.v3.StringMatcher.suffix":                   "",
	"envoy.type.matcher.v3.StringMatcher.contains":                 "",
	"envoy.type.matcher.v3.StringMatcher.ignore_case":              "",

	// Clusters.
	"envoy.config.cluster.v3.Cluster.name":                                                            "",
	"envoy.config.cluster.v3.Cluster.type":                                                            "",
	"envoy.config.cluster.v3.Cluster.cluster_type":                                                    "",
	"envoy.config.cluster.v3.Cluster.connect_timeout":                                                 "",
	"envoy.config.cluster.v3.Cluster.lb_policy":                                                       "",
	"envoy.config.cluster.v3.Cluster.per_connection_buffer_limit_bytes":                               "the dev proxy streams bodies through a fixed 32 KiB copy buffer",
	"envoy.config.cluster.v3.Cluster.typed_extension_protocol_options":                                "",
	"envoy.config.cluster.v3.Cluster.load_assignment":                                                 "a cluster's addresses come from -registrar, -upstream and -cluster",
	"envoy.config.cluster.v3.Cluster.health_checks":                                                   "",
	"envoy.config.cluster.v3.Cluster.outlier_detection":                                               "a failed endpoint is skipped for a while (see clusters.go); the thresholds are not reproduced",
	"envoy.config.cluster.v3.Cluster.CustomClusterType.name":                                          "",
	"envoy.config.cluster.v3.Cluster.CustomClusterType.typed_config":                                  "",
	"envoy.config.core.v3.HealthCheck.timeout":                                                        "",
	"envoy.config.core.v3.HealthCheck.interval":                                                       "",
	"envoy.config.core.v3.HealthCheck.unhealthy_threshold":                                            "",
	"envoy.config.core.v3.HealthCheck.healthy_threshold":                                              "",
	"envoy.config.core.v3.HealthCheck.tcp_health_check":                                               "",
	"envoy.config.core.v3.HealthCheck.http_health_check":                                              "",
	"envoy.config.core.v3.HealthCheck.HttpHealthCheck.path":                                           "",
	"envoy.config.core.v3.HealthCheck.HttpHealthCheck.host":                                           "",
	"envoy.extensions.upstreams.http.v3.HttpProtocolOptions.common_http_protocol_options":             "",
	"envoy.extensions.upstreams.http.v3.HttpProtocolOptions.explicit_http_config":                     "",
	"envoy.extensions.upstreams.http.v3.HttpProtocolOptions.upstream_http_protocol_options":           "targets are plain HTTP; SNI and SAN checks apply only to TLS",
	"envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig.http_protocol_options": "",
	"envoy.config.core.v3.UpstreamHttpProtocolOptions.auto_sni":                                       "",
	"envoy.config.core.v3.UpstreamHttpProtocolOptions.auto_san_validation":                            "",
	"envoy.config.cluster.v3.OutlierDetection.split_external_local_origin_errors":                     "",
	"envoy.config.cluster.v3.OutlierDetection.consecutive_local_origin_failure":                       "",
	"envoy.config.cluster.v3.OutlierDetection.consecutive_5xx":                                        "",
	"envoy.config.cluster.v3.OutlierDetection.base_ejection_time":                                     "",
	"envoy.config.cluster.v3.OutlierDetection.interval":                                               "",
	"envoy.config.endpoint.v3.ClusterLoadAssignment.cluster_name":                                     "",
	"envoy.config.endpoint.v3.ClusterLoadAssignment.endpoints":                                        "",
	"envoy.config.endpoint.v3.LocalityLbEndpoints.lb_endpoints":                                       "",
	"envoy.config.endpoint.v3.LbEndpoint.endpoint":                                                    "",
	"envoy.config.endpoint.v3.Endpoint.address":                                                       "",
}

const (
	hcmPkg   = "envoy.extensions.filters.network.http_connection_manager.v3"
	hcmName  = hcmPkg + ".HttpConnectionManager"
	corsName = "envoy.extensions.filters.http.cors.v3.CorsPolicy"
)

// checkFeatures walks every set field of m (inside every typed_config too) and returns
// the fields the dev proxy does not know (each field once, where it first occurs),
// and the notes of those it accepts without reproducing them, each once.
func checkFeatures(m proto.Message) (unknown []string, notes []string) {
	seenNote, seenUnknown := map[string]bool{}, map[string]bool{}
	var walk func(m protoreflect.Message, path string)
	walk = func(m protoreflect.Message, path string) {
		if a, ok := m.Interface().(*anypb.Any); ok {
			inner, err := envoyconfig.Unpack(a)
			if err != nil {
				unknown = append(unknown, fmt.Sprintf("%s (%s: %v)", path, a.GetTypeUrl(), err))
				return
			}
			walk(inner.ProtoReflect(), path)
			return
		}
		name := string(m.Descriptor().FullName())
		if strings.HasPrefix(name, "google.protobuf.") {
			return // Duration, wrappers: values, not features
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			key := name + "." + string(fd.Name())
			fpath := path + "." + string(fd.Name())
			note, ok := features[key]
			if !ok {
				if !seenUnknown[key] {
					seenUnknown[key] = true
					unknown = append(unknown, fmt.Sprintf("%s (%s)", strings.TrimPrefix(fpath, "."), key))
				}
				return true
			}
			if note != "" && !seenNote[note] {
				seenNote[note] = true
				notes = append(notes, string(fd.Name())+": "+note)
			}
			if fd.Message() == nil {
				return true
			}
			switch {
			case fd.IsList():
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					walk(l.Get(i).Message(), fmt.Sprintf("%s[%d]", fpath, i))
				}
			case fd.IsMap():
				mv := v.Map()
				var keys []string
				mv.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
					keys = append(keys, k.String())
					return true
				})
				for _, k := range slices.Sorted(slices.Values(keys)) {
					if fd.MapValue().Message() != nil {
						walk(mv.Get(protoreflect.ValueOfString(k).MapKey()).Message(), fpath+"["+k+"]")
					}
				}
			default:
				walk(v.Message(), fpath)
			}
			return true
		})
	}
	walk(m.ProtoReflect(), "")
	return unknown, notes
}
