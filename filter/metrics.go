package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

	"switchyard/filter/routing"
	"switchyard/internal/abi"
	"switchyard/internal/contract"
)

// The filter's metrics (names in internal/contract). Envoy shows a proxy-wasm metric
// under its bare name in /stats and Prometheus (dots become underscores there:
// switchyard_routed). They are defined in on_configure, never in init(): Envoy traps a
// define_metric made while the module initialises.

// metricsOff is set once the host refused a metric definition (a host that keeps no
// metrics answers define_metric with an error): the VM then runs without metrics,
// having said so once, and every id is 0 (which the host ignores).
var metricsOff bool

// defineCounter and defineGauge give the id of a metric, or 0 when the host keeps
// none.
func defineCounter(name string) uint32 { return define(abi.MetricCounter, name) }
func defineGauge(name string) uint32   { return define(abi.MetricGauge, name) }

func define(typ abi.MetricType, name string) uint32 {
	if metricsOff {
		return 0
	}
	id, st := defineMetric(typ, name)
	if st != abi.StatusOK {
		metricsOff = true
		proxywasm.LogWarn("the proxy keeps no metrics for this plugin (define_metric " + name + ": " + st.String() +
			"); running without switchyard's metrics")
		return 0
	}
	return id
}

// routerMetrics are the router's counter ids: routed, routed in panic, targets
// ejected by the passive health check, and one per rejection.
type routerMetrics struct {
	routed, panic, ejections uint32
	rejected                 [routing.NumOutcomes]uint32 // indexed by Outcome; only rejections are defined
}

func defineRouterMetrics() routerMetrics {
	m := routerMetrics{
		routed:    defineCounter(contract.MetricRouted),
		panic:     defineCounter(contract.MetricRoutedPanic),
		ejections: defineCounter(contract.MetricEjections),
	}
	for o := routing.Outcome(0); o < routing.NumOutcomes; o++ {
		if o.Rejected() {
			m.rejected[o] = defineCounter(contract.MetricRejectedBase + o.Code())
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
		success:  defineCounter(contract.MetricSyncSuccess),
		failure:  defineCounter(contract.MetricSyncFailure),
		size:     defineGauge(contract.MetricTableSize),
		revision: defineGauge(contract.MetricTableRevision),
	}
}
