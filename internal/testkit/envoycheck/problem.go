// Package envoycheck checks an Envoy bootstrap file (the project's envoy.yaml) offline,
// without an Envoy binary: against Envoy's v3 API schema and its validation rules (from
// go-control-plane), all the way inside every typed_config, and against the start-up
// rules and Switchyard invariants that the schema cannot express. It runs on the model
// internal/envoyconfig reads, the one the dev proxy serves; only tests use it.
//
// It is as strict as it can be without Envoy: unknown fields and unknown "@type"s fail
// to load. It cannot know whether the .wasm file exists or loads, whether the plugin's
// on_configure accepts its configuration (envoyconfig.PluginConfigurations hands the
// bytes to a test that can ask the real filter), or the factory checks Envoy does at
// run time beyond the ones coded in CheckSemantics. `envoy --mode validate -c
// envoy.yaml` on the target Envoy version remains the final word.
package envoycheck

import "fmt"

// Rule names one check. Tests and callers match problems by Rule, not by message text.
type Rule string

// Schema-level rules, reported by ValidateDeep.
const (
	RuleSchema      Rule = "schema"       // a protoc-gen-validate rule of Envoy's API failed
	RuleUnpack      Rule = "unpack"       // a typed_config could not be unpacked
	RuleDuration    Rule = "duration"     // a negative or out-of-range Duration
	RuleTypedStruct Rule = "typed-struct" // a TypedStruct, whose contents cannot be checked
	RuleDeprecated  Rule = "deprecated"   // a deprecated field or enum value is set
)

// Start-up and project rules, reported by CheckSemantics.
const (
	RuleAdminLoopback   Rule = "admin-loopback"     // admin listens only on loopback
	RuleHTTPManager     Rule = "http-manager"       // a listener has an inline HTTP connection manager
	RuleFilterOrder     Rule = "filter-order"       // HTTP filters are cors, wasm, dfp, router
	RuleWasmService     Rule = "wasm-service"       // exactly one envoy.bootstrap.wasm WasmService
	RuleSingleton       Rule = "wasm-singleton"     // the service is a singleton
	RuleRootID          Rule = "wasm-root-id"       // root ids are sync (service) and router (filter)
	RuleVMID            Rule = "wasm-vm-id"         // service and filter share a non-empty vm_id
	RuleWasmCode        Rule = "wasm-code"          // service and filter load the same local file
	RuleWasmRuntime     Rule = "wasm-runtime"       // both use the V8 runtime
	RuleFailOpen        Rule = "wasm-fail-closed"   // neither fails open
	RuleDNSCache        Rule = "dfp-dns-cache"      // DFP filter and cluster use an equal dns_cache_config
	RuleDFPClusterType  Rule = "dfp-cluster-type"   // DFP cluster_type name is exact
	RuleDFPLBPolicy     Rule = "dfp-lb-policy"      // DFP cluster uses CLUSTER_PROVIDED
	RuleDFPInsecure     Rule = "dfp-insecure"       // allow_insecure_cluster_options is false
	RuleDFPAutoSNI      Rule = "dfp-auto-sni"       // auto_sni and auto_san_validation with typed options
	RuleRouteConfig     Rule = "route-config"       // the route configuration is inline
	RuleRouteCluster    Rule = "route-cluster"      // every route's cluster exists
	RulePerFilterConfig Rule = "per-filter-config"  // typed_per_filter_config keys name filters in the chain
	RuleDFPRoutes       Rule = "dfp-routes"         // only the plugin's path prefixes reach the DFP cluster
	RuleWasmPerRoute    Rule = "wasm-per-route"     // wasm is disabled on every route but those
	RuleRegistrarRoutes Rule = "registrar-routes"   // the registrar is public only under /api
	RulePluginConfig    Rule = "plugin-config"      // the plugin JSON parses, known keys, same for both roots
	RuleRegistrar       Rule = "registrar"          // the registrar cluster exists and allows the long-poll
	RuleNameHeader      Rule = "server-name-header" // the DFP route drops the server-name header
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	Rule    Rule
	Path    string // where: a field path such as static_resources.clusters[app].lb_policy
	Message string // what is wrong and what to do about it
}

func (p Problem) Error() string {
	return fmt.Sprintf("%s: %s [%s]", p.Path, p.Message, p.Rule)
}

// problems collects Problems; the zero value is ready to use.
type problems []Problem

func (ps *problems) add(rule Rule, path, format string, args ...any) {
	*ps = append(*ps, Problem{Rule: rule, Path: path, Message: fmt.Sprintf(format, args...)})
}
