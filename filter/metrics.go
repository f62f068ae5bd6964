package main

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// Metric names. Envoy shows a proxy-wasm metric under its bare name in /stats and
// Prometheus (dots become underscores there: switchyard_routed). They are defined in
// on_configure, never in init(): Envoy traps a define_metric made while the module
// initialises.
const (
	metricRouted        = "switchyard.routed"         // counter: requests sent on to a target
	metricRejectedBase  = "switchyard.rejected."      // counter per Outcome.Code(), e.g. switchyard.rejected.unknown_server
	metricSyncSuccess   = "switchyard.sync.success"   // counter: polls answered 200 (applied) or 304
	metricSyncFailure   = "switchyard.sync.failure"   // counter: polls that failed (error, timeout, bad status, invalid snapshot)
	metricTableSize     = "switchyard.table.size"     // gauge: servers in the live table
	metricTableRevision = "switchyard.table.revision" // gauge: revision of the live table
)

// routerMetrics are the router's counters, one per Outcome.
type routerMetrics struct {
	routed   proxywasm.MetricCounter
	rejected [Unknown + 1]proxywasm.MetricCounter // indexed by Outcome (Missing..Unknown)
}

func defineRouterMetrics() routerMetrics {
	m := routerMetrics{routed: proxywasm.DefineCounterMetric(metricRouted)}
	for o := Missing; o <= Unknown; o++ {
		m.rejected[o] = proxywasm.DefineCounterMetric(metricRejectedBase + o.Code())
	}
	return m
}

type syncMetrics struct {
	success, failure    proxywasm.MetricCounter
	tableSize, revision proxywasm.MetricGauge
}

func defineSyncMetrics() syncMetrics {
	return syncMetrics{
		success:   proxywasm.DefineCounterMetric(metricSyncSuccess),
		failure:   proxywasm.DefineCounterMetric(metricSyncFailure),
		tableSize: proxywasm.DefineGaugeMetric(metricTableSize),
		revision:  proxywasm.DefineGaugeMetric(metricTableRevision),
	}
}
