package envoycheck

import (
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"switchyard/internal/envoyconfig"
)

// Inline replacements for the anchored pieces, so one root or one side can differ.
const (
	inlineVM = "vm_config: {vm_id: switchyard, runtime: envoy.wasm.runtime.v8, code: {local: {filename: /etc/envoy/filter.wasm}}}"
	// routerConfig is where the router filter takes the shared plugin configuration.
	routerConfig = "configuration: *switchyard_plugin_configuration"
	routerVM     = "vm_config: *switchyard_vm"
)

// inlineConfig is a StringValue plugin configuration holding js.

func inlineConfig(js string) string {
	return "configuration: {\"@type\": type.googleapis.com/google.protobuf.StringValue, value: '" + js + "'}"
}

const designJSON = `{"header":"x-server-name","path_prefixes":["/sys"],"default_port":80,"strip_header":false,` +
	`"registrar":{"cluster":"registrar","authority":"registrar","path":"/v1/routes","wait_seconds":30,"token":""}}`

// Each case breaks one rule of envoy.yaml, by a text replacement or a structural edit,
// and CheckSemantics must report that rule at the right place. The unchanged file has
// no problems (TestRepoConfigHasNoProblems), so what is found comes from the change.
func TestCheckSemanticsFinds(t *testing.T) {
	tests := []struct {
		name    string
		replace []string                                 // old, new pairs applied to envoy.yaml
		edit    func(*testing.T, *bootstrapv3.Bootstrap) // applied after loading, if set
		want    Rule
		where   string // in the problem's Path
	}{
		{
			name:    "admin open to the network",
			replace: []string{"address: 127.0.0.1, port_value: 9901", "address: 0.0.0.0, port_value: 9901"},
			want:    RuleAdminLoopback, where: "admin",
		},
		{
			name:  "wasm before cors",
			edit:  swapFilters(0, 1),
			want:  RuleFilterOrder,
			where: "http_filters",
		},
		{
			name:  "dfp before wasm",
			edit:  swapFilters(1, 2),
			want:  RuleFilterOrder,
			where: "http_filters",
		},
		{
			name: "dfp filter missing",
			edit: func(t *testing.T, bs *bootstrapv3.Bootstrap) {
				editManager(t, bs, func(h *hcmv3.HttpConnectionManager) {
					h.HttpFilters = append(h.HttpFilters[:2], h.HttpFilters[3])
				})
			},
			want: RuleFilterOrder, where: "http_filters",
		},
		{
			name:    "filter renamed",
			replace: []string{"- name: envoy.filters.http.router", "- name: router"},
			want:    RuleFilterOrder, where: "http_filters",
		},
		{
			name: "no listener with a connection manager",
			edit: func(t *testing.T, bs *bootstrapv3.Bootstrap) { bs.StaticResources.Listeners = nil },
			want: RuleHTTPManager, where: "listeners",
		},
		{
			name: "no wasm service",
			edit: func(t *testing.T, bs *bootstrapv3.Bootstrap) { bs.BootstrapExtensions = nil },
			want: RuleWasmService, where: "bootstrap_extensions",
		},
		{
			name: "two wasm services",
			edit: func(t *testing.T, bs *bootstrapv3.Bootstrap) {
				bs.BootstrapExtensions = append(bs.BootstrapExtensions, bs.BootstrapExtensions[0])
			},
			want: RuleWasmService, where: "bootstrap_extensions",
		},
		{
			name:    "server-name header reaches the target",
			replace: []string{"request_headers_to_remove: [x-server-name]", "request_headers_to_remove: [x-other]"},
			want:    RuleNameHeader, where: "request_headers_to_remove",
		},
		{
			name:    "service not a singleton",
			replace: []string{"singleton: true", "singleton: false"},
			want:    RuleSingleton, where: "singleton",
		},
		{
			name:    "service root id",
			replace: []string{"root_id: sync\n", "root_id: router\n"},
			want:    RuleRootID, where: "(WasmService).config.root_id",
		},
		{
			name:    "filter root id",
			replace: []string{"root_id: router\n", "root_id: sync\n"},
			want:    RuleRootID, where: "(Wasm).config.root_id",
		},
		{
			name:    "filter on another vm_id",
			replace: []string{routerVM, strings.Replace(inlineVM, "vm_id: switchyard", "vm_id: other", 1)},
			want:    RuleVMID, where: "(Wasm).config.vm_config.vm_id",
		},
		{
			name:    "empty vm_id on both",
			replace: []string{"vm_id: switchyard\n", "vm_id: \"\"\n"},
			want:    RuleVMID, where: "(WasmService).config.vm_config.vm_id",
		},
		{
			name:    "filter loads another file",
			replace: []string{routerVM, strings.Replace(inlineVM, "/etc/envoy/filter.wasm", "/etc/envoy/other.wasm", 1)},
			want:    RuleWasmCode, where: "(Wasm).config.vm_config.code",
		},
		{
			name:    "runtime not v8",
			replace: []string{"runtime: envoy.wasm.runtime.v8\n", "runtime: envoy.wasm.runtime.wamr\n"},
			want:    RuleWasmRuntime, where: "vm_config.runtime",
		},
		{
			name:    "filter fails open",
			replace: []string{"name: switchyard-router\n", "name: switchyard-router\n                failure_policy: FAIL_OPEN\n"},
			want:    RuleFailOpen, where: "(Wasm).config.failure_policy",
		},
		{
			name:    "service fails open (deprecated field)",
			replace: []string{"name: switchyard-sync\n", "name: switchyard-sync\n      fail_open: true\n"},
			want:    RuleFailOpen, where: "(WasmService).config.fail_open",
		},
		{
			name:    "filter and cluster DNS caches differ",
			replace: []string{"dns_cache_config: *sys_dns_cache", "dns_cache_config: {name: sys_dns_cache, dns_lookup_family: V4_PREFERRED, max_hosts: 2048}"},
			want:    RuleDNSCache, where: "dynamic_forward_proxy].typed_config(FilterConfig).dns_cache_config",
		},
		{
			name:    "DFP cluster_type name not exact",
			replace: []string{"name: envoy.clusters.dynamic_forward_proxy\n", "name: envoy.clusters.dfp\n"},
			want:    RuleDFPClusterType, where: "clusters[dynamic_forward_proxy_cluster].cluster_type.name",
		},
		{
			name:    "DFP cluster name with another config type",
			replace: []string{"app\n    type: STATIC\n", "app\n    cluster_type: {name: envoy.clusters.dynamic_forward_proxy, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}}\n"},
			want:    RuleDFPClusterType, where: "clusters[app].cluster_type.typed_config",
		},
		{
			name:    "DFP cluster not CLUSTER_PROVIDED",
			replace: []string{"lb_policy: CLUSTER_PROVIDED", "lb_policy: ROUND_ROBIN"},
			want:    RuleDFPLBPolicy, where: "clusters[dynamic_forward_proxy_cluster].lb_policy",
		},
		{
			name:    "DFP cluster insecure",
			replace: []string{"dns_cache_config: *sys_dns_cache", "dns_cache_config: *sys_dns_cache\n        allow_insecure_cluster_options: true"},
			want:    RuleDFPInsecure, where: "allow_insecure_cluster_options",
		},
		{
			name:    "auto_sni off",
			replace: []string{"auto_sni: true", "auto_sni: false"},
			want:    RuleDFPAutoSNI, where: "clusters[dynamic_forward_proxy_cluster].typed_extension_protocol_options",
		},
		{
			name:    "auto_san_validation off",
			replace: []string{"auto_san_validation: true", "auto_san_validation: false"},
			want:    RuleDFPAutoSNI, where: "clusters[dynamic_forward_proxy_cluster].typed_extension_protocol_options",
		},
		{
			name: "routes from RDS",
			edit: func(t *testing.T, bs *bootstrapv3.Bootstrap) {
				editManager(t, bs, func(h *hcmv3.HttpConnectionManager) {
					h.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "public"}}
				})
			},
			want: RuleRouteConfig, where: "HttpConnectionManager",
		},
		{
			name:    "route to an undefined cluster",
			replace: []string{"cluster: frontend\n", "cluster: frontnd\n"},
			want:    RuleRouteCluster, where: "routes[3 prefix /].route",
		},
		{
			name:    "route picks its cluster from a header",
			replace: []string{"cluster: frontend\n", "cluster_header: x-cluster\n"},
			want:    RuleRouteCluster, where: "routes[3 prefix /].route",
		},
		{
			name:    "per-filter config for a filter not in the chain",
			replace: []string{"envoy.filters.http.cors: &cors_policy", "envoy.filters.http.cors_v2: &cors_policy"},
			want:    RulePerFilterConfig, where: "routes[1 /api].typed_per_filter_config[envoy.filters.http.cors_v2]",
		},
		{
			name:    "another route to the DFP cluster",
			replace: []string{"cluster: frontend\n", "cluster: dynamic_forward_proxy_cluster\n"},
			want:    RuleDFPRoutes, where: "routes[3 prefix /].match",
		},
		{
			name:    "/sys as a plain prefix also matches /system",
			replace: []string{"match: { path_separated_prefix: /sys }", "match: { prefix: /sys }"},
			want:    RuleDFPRoutes, where: "routes[0 prefix /sys].match",
		},
		{
			name:    "/sys matched case-insensitively",
			replace: []string{"match: { path_separated_prefix: /sys }", "match: { path_separated_prefix: /sys, case_sensitive: false }"},
			want:    RuleDFPRoutes, where: "routes[0 /sys].match.case_sensitive",
		},
		{
			name: "wasm left on for the frontend",
			replace: []string{"timeout: 15s\n                typed_per_filter_config:\n                  envoy.filters.http.wasm: *wasm_off\n",
				"timeout: 15s\n"},
			want: RuleWasmPerRoute, where: "routes[3 prefix /]",
		},
		{
			name: "wasm turned off on /sys",
			replace: []string{"request_headers_to_remove: [x-server-name]",
				"request_headers_to_remove: [x-server-name]\n                typed_per_filter_config: {envoy.filters.http.wasm: {\"@type\": type.googleapis.com/envoy.config.route.v3.FilterConfig, disabled: true}}"},
			want: RuleWasmPerRoute, where: "routes[0 /sys]",
		},
		{
			name:    "/v1 exposed through the registrar",
			replace: []string{"match: { path_separated_prefix: /api }", "match: { prefix: / }"},
			want:    RuleRegistrarRoutes, where: "routes[1 prefix /].match",
		},
		{
			name:    "plugin configuration with an unknown key",
			replace: []string{`"strip_header": false,`, `"strip_headers": false,`},
			want:    RulePluginConfig, where: "(WasmService).config.configuration",
		},
		{
			name:    "plugin configuration key in the wrong case",
			replace: []string{`"header": "x-server-name",`, `"Header": "x-server-name",`},
			want:    RulePluginConfig, where: "configuration",
		},
		{
			name:    "plugin configuration with an unknown registrar key",
			replace: []string{`"token": ""`, `"token": "", "timeout_ms": 40000`},
			want:    RulePluginConfig, where: "configuration",
		},
		{
			name:    "plugin configuration not JSON",
			replace: []string{`"default_port": 80,`, `"default_port": 80`},
			want:    RulePluginConfig, where: "configuration",
		},
		{
			name:    "plugin configuration with a wrong value type",
			replace: []string{`"wait_seconds": 30,`, `"wait_seconds": "30",`},
			want:    RulePluginConfig, where: "configuration",
		},
		{
			name:    "plugin configuration differs between roots",
			replace: []string{routerConfig, inlineConfig(strings.Replace(designJSON, `"default_port":80`, `"default_port":8080`, 1))},
			want:    RulePluginConfig, where: "(Wasm).config.configuration",
		},
		{
			name:    "plugin configuration as a Struct",
			replace: []string{routerConfig, `configuration: {"@type": type.googleapis.com/google.protobuf.Struct, value: {header: x-server-name}}`},
			want:    RulePluginConfig, where: "(Wasm)",
		},
		{
			name:    "plugin configuration missing",
			replace: []string{routerConfig, ""},
			want:    RulePluginConfig, where: "(Wasm)",
		},
		{
			name:    "registrar cluster not defined",
			replace: []string{`"cluster": "registrar",`, `"cluster": "registry",`},
			want:    RuleRegistrar, where: "registrar.cluster",
		},
		{
			name:    "registrar connections closed during the long-poll",
			replace: []string{"idle_timeout: 90s", "idle_timeout: 35s"},
			want:    RuleRegistrar, where: "clusters[registrar].typed_extension_protocol_options.common_http_protocol_options.idle_timeout",
		},
		{
			name:    "registrar streams cut during the long-poll",
			replace: []string{"idle_timeout: 90s", "idle_timeout: 90s\n          max_stream_duration: 40s"},
			want:    RuleRegistrar, where: "max_stream_duration",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bs := loadText(t, RepoConfigText(t, tc.replace...))
			if tc.edit != nil {
				tc.edit(t, bs)
			}
			ps := CheckSemantics(bs)
			for _, p := range ps {
				t.Log(p)
			}
			for _, p := range ps {
				if p.Rule == tc.want && strings.Contains(p.Path, tc.where) {
					return
				}
			}
			_, found := withRule(ps, tc.want)
			t.Errorf("CheckSemantics found %v, want %s at a path containing %q", found, tc.want, tc.where)
		})
	}
}

// swapFilters exchanges two HTTP filters of the first connection manager.
func swapFilters(i, j int) func(*testing.T, *bootstrapv3.Bootstrap) {
	return func(t *testing.T, bs *bootstrapv3.Bootstrap) {
		editManager(t, bs, func(h *hcmv3.HttpConnectionManager) {
			h.HttpFilters[i], h.HttpFilters[j] = h.HttpFilters[j], h.HttpFilters[i]
		})
	}
}

// Keys the plugin configuration leaves out take the filter's defaults, which fit this
// file, so an empty configuration for both roots is not a problem.
func TestCheckSemanticsAcceptsDefaultedPluginConfig(t *testing.T) {
	text := RepoConfigText(t)
	start := strings.Index(text, "configuration: &switchyard_plugin_configuration")
	end := strings.Index(text, "\n      # failure_policy is left unset")
	if start < 0 || end < start {
		t.Fatalf("the sync's configuration block is not where this test expects it in %s", RepoConfigPath(t))
	}
	bs := loadText(t, RepoConfigText(t,
		text[start:end], "configuration: &switchyard_plugin_configuration "+strings.TrimPrefix(inlineConfig("{}"), "configuration: ")))
	sync, router, err := envoyconfig.PluginConfigurations(bs)
	if err != nil || string(sync) != "{}" || string(router) != "{}" {
		t.Fatalf("PluginConfigurations = %q, %q, %v; want {} for both roots", sync, router, err)
	}
	if err := Join(CheckSemantics(bs)); err != nil {
		t.Errorf("an empty plugin configuration should take the filter's defaults:\n%v", err)
	}
}
