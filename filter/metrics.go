package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"switchyard/filter/routing"
	"switchyard/internal/contract"
)

// The filter's metrics (names in internal/contract). Envoy shows a proxy-wasm metric
// under its bare name in /stats and Prometheus (dots become underscores there:
// switchyard_routed). They are defined in on_configure, never in init(): Envoy traps a
// define_metric made while the module initialises.

// routerMetrics are the router's counter ids: routed, and one per rejection.
type routerMetrics struct {
	routed   uint32
	rejected [routing.NumOutcomes]uint32 // indexed by Outcome; only rejections are defined
}

func defineRouterMetrics() routerMetrics {
	m := routerMetrics{routed: uint32(proxywasm.DefineCounterMetric(contract.MetricRouted))}
	for o := routing.Outcome(0); o < routing.NumOutcomes; o++ {
		if o.Rejected() {
			m.rejected[o] = uint32(proxywasm.DefineCounterMetric(contract.MetricRejectedBase + o.Code()))
		}
	}
	return m
}

// pollMetrics are a poller's counters and gauges: polls answered and failed, and the
// table's size and revision.
type pollMetrics struct {
	success, failure, size, revision uint32
}

func definePollMetrics() pollMetrics {
	return pollMetrics{
		success:  uint32(proxywasm.DefineCounterMetric(contract.MetricSyncSuccess)),
		failure:  uint32(proxywasm.DefineCounterMetric(contract.MetricSyncFailure)),
		size:     uint32(proxywasm.DefineGaugeMetric(contract.MetricTableSize)),
		revision: uint32(proxywasm.DefineGaugeMetric(contract.MetricTableRevision)),
	}
}
