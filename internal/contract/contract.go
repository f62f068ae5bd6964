// Package contract holds Switchyard's own names that several parts must agree on:
// the filter's root ids, its metric names, its shared-data keys, the error codes of
// its local replies and the sync's poll timing. The filter (compiled for wasip1), the
// dev proxy, the envoy.yaml checker and the tests import them from here instead of
// retyping them, and the target-set string's codec (targetset.go). Constants and pure
// functions on the standard library and internal/validate: safe in the filter.
package contract

// Root ids of the one filter.wasm (the plugin's root_id in Envoy's configuration).
const (
	RootSync   = "sync"   // the singleton service that keeps the table in shared data
	RootRouter = "router" // the HTTP filter on every worker
)

// Metric names, defined by the filter with proxy_define_metric. Envoy shows them
// under its wasm stats prefix; the dev proxy's /stats shows them as they are.
const (
	MetricRouted        = "switchyard.routed"            // counter: requests sent on to a target (added on each router tick)
	MetricRejectedBase  = "switchyard.rejected."         // counter per error code, e.g. switchyard.rejected.unknown_server
	MetricSyncSuccess   = "switchyard.sync.success"      // counter: polls answered and applied (200) or unchanged (304)
	MetricSyncFailure   = "switchyard.sync.failure"      // counter: polls that failed or whose answer was refused
	MetricTableSize     = "switchyard.table.size"        // gauge: servers in the live table
	MetricTableRevision = "switchyard.table.revision"    // gauge: revision of the live table
	MetricTableAge      = "switchyard.table.age_seconds" // gauge: seconds since the last successful poll (set by routers on their tick)
	MetricRoutedPanic   = "switchyard.routed.panic"      // counter: requests routed in panic (every routable target down or ejected)
	MetricEjections     = "switchyard.health.ejections"  // counter: targets ejected by the passive health check (max_fails reached)
)

// Shared-data keys. Every key the filter writes starts with KeyPrefix, since other
// plugins may share the namespace (Istio leaves vm_id empty).
const (
	KeyPrefix = "switchyard/"
	// CurrentKey holds the route key prefix of the generation of the table routers
	// read: RouteKeyPrefixA or RouteKeyPrefixB (LegacyRouteKeyPrefix while a table
	// written by the first layout awaits its reload). Absent until the first table is
	// complete. A router reads it, then CurrentKey's value + server name → target
	// ("" or absent: not registered); the poller switches tables by writing it once.
	CurrentKey           = "switchyard/current"
	RouteKeyPrefixA      = "switchyard/a/route/"
	RouteKeyPrefixB      = "switchyard/b/route/"
	LegacyRouteKeyPrefix = "switchyard/route/"
	RevisionKey          = "switchyard/revision" // revision of the current table, for tools and tests
	LeaseKey             = "switchyard/lease"    // which VM polls the registrar (filter/polling/lease.go)
	PolledKey            = "switchyard/polled"   // host monotonic time (ns, WASI clock 1) of the last successful poll
	StaleKey             = "switchyard/stale"    // "1" while the table is older than stale_after_seconds
	// HealthKey is the passive health check's state, shared by a proxy's routers
	// (filter/health): one line per target with recent failures or an ejection.
	HealthKey = "switchyard/health/targets"
)

// IsRouteKeyPrefix reports whether v (CurrentKey's value) names a generation of the
// table. It allocates nothing: routers call it on every request.
func IsRouteKeyPrefix(v string) bool {
	return v == RouteKeyPrefixA || v == RouteKeyPrefixB || v == LegacyRouteKeyPrefix
}

// AppendRouteKey appends the route key of name in the generation whose route key
// prefix is prefix (CurrentKey's value) to dst.
func AppendRouteKey(dst []byte, prefix, name string) []byte {
	return append(append(dst, prefix...), name...)
}

// LeaseSeconds is how long the poll lease lasts without renewal: a poller whose VM
// died is replaced within this plus one tick of another router.
const LeaseSeconds = 10

// Error codes of the router's local replies (the "error" field of the JSON body) and
// their HTTP statuses.
const (
	CodeMissingServerName = "missing_server_name" // 400: the server-name header is absent or empty
	CodeInvalidServerName = "invalid_server_name" // 400: the name breaks the naming rules
	CodeRoutesNotLoaded   = "routes_not_loaded"   // 503 with retry-after: no table yet
	CodeUnknownServer     = "unknown_server"      // 404: the name is not registered
	CodeNoActiveTarget    = "no_active_target"    // 503: every target of the name is draining or weighs 0
)

// Poll timing of the sync: the registrar holds a long-poll for wait_seconds, so the
// http call's timeout is that plus PollTimeoutMarginSeconds; a call the host never
// answers is given up PollLostMarginSeconds after its timeout.
const (
	PollTimeoutMarginSeconds = 10
	PollLostMarginSeconds    = 5
)
