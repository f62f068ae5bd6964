package wasmhost

import (
	"sync/atomic"

	"switchyard/internal/abi"
)

// Metrics: docs/proxy-wasm-host.md, Metrics. The guest's names are kept as they are
// (Envoy's /stats shows the bare name), one metric per (type, name) across every VM of
// the Host, ids per VM with the type in the low 2 bits.

var metricImports = []*hostFunc{proxyDefineMetric, proxyIncrementMetric, proxyRecordMetric, proxyGetMetric}

// proxyDefineMetric is env.proxy_define_metric: the VM's id for the metric of that
// type and name (the same id when defined again).
//
//	proxy_define_metric(type, name_ptr, name_size, ret_id_ptr) -> status
//
// Statuses:
//   - Ok: the id was written.
//   - BadArgument: type above 2 (0 counter, 1 gauge, 2 histogram).
//   - InvalidMemoryAccess: name or ret_id_ptr outside guest memory.
//   - Unimplemented: Options.NoMetrics (a host that keeps no metrics).
//
// Linked everywhere; callbacks only (so not from a Go guest's init()).
var proxyDefineMetric = envCall("proxy_define_metric", 4, (*VM).defineMetric)

// proxyIncrementMetric is env.proxy_increment_metric: a counter adds a positive offset,
// a gauge adds any offset.
//
//	proxy_increment_metric(metric_id, offset i64) -> status
//
// Statuses:
//   - Ok: applied.
//   - NotFound: the VM defined no such id.
//   - BadArgument: a counter with offset <= 0, or a histogram.
//
// Linked everywhere; callbacks only.
var proxyIncrementMetric = &hostFunc{
	module: moduleEnv, name: "proxy_increment_metric",
	params: types(i32, i64), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) { s[0] = uint64(vm.incrementMetric(uint32(s[0]), int64(s[1]))) },
}

// proxyRecordMetric is env.proxy_record_metric: a counter adds the value, a gauge is
// set to it, a histogram records it (Host.Metric counts recorded values).
//
//	proxy_record_metric(metric_id, value u64) -> status
//
// Statuses:
//   - Ok: applied.
//   - NotFound: the VM defined no such id.
//
// Linked everywhere; callbacks only.
var proxyRecordMetric = &hostFunc{
	module: moduleEnv, name: "proxy_record_metric",
	params: types(i32, i64), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) { s[0] = uint64(vm.recordMetric(uint32(s[0]), s[1])) },
}

// proxyGetMetric is env.proxy_get_metric: a counter's total or a gauge's value.
//
//	proxy_get_metric(metric_id, ret_value_ptr) -> status
//
// Statuses:
//   - Ok: the value (u64) was written.
//   - NotFound: the VM defined no such id.
//   - BadArgument: a histogram.
//   - InvalidMemoryAccess: ret_value_ptr outside guest memory.
//
// Linked everywhere; callbacks only.
var proxyGetMetric = envCall("proxy_get_metric", 2, func(vm *VM, s []uint64) abi.Status { return vm.getMetric(uint32(s[0]), uint32(s[1])) })

type metricKey struct {
	typ  abi.MetricType
	name string
}

type metric struct {
	typ   abi.MetricType
	name  string
	value atomic.Int64 // counter total, gauge value, histogram: number of recorded values
}

// Metric returns the value of the metric the guest defined under name: a counter's
// total or a gauge's value (counters first when both exist), a histogram's count of
// recorded values.
func (h *Host) Metric(name string) (value int64, ok bool) {
	h.metricMu.Lock()
	defer h.metricMu.Unlock()
	for typ := abi.MetricCounter; typ <= abi.MetricHistogram; typ++ {
		if m, ok := h.metrics[metricKey{typ, name}]; ok {
			return m.value.Load(), true
		}
	}
	return 0, false
}

// Metrics returns every defined metric by name (see Metric for what the value is).
// The dev proxy renders this Envoy-style.
func (h *Host) Metrics() map[string]int64 {
	h.metricMu.Lock()
	defer h.metricMu.Unlock()
	out := make(map[string]int64, len(h.metrics))
	for k, m := range h.metrics {
		if _, dup := out[k.name]; !dup || k.typ == abi.MetricCounter {
			out[k.name] = m.value.Load()
		}
	}
	return out
}

func (vm *VM) defineMetric(s []uint64) abi.Status {
	if vm.host.opts.NoMetrics {
		return abi.StatusUnimplemented
	}
	typ := abi.MetricType(s[0])
	if typ > abi.MetricHistogram {
		return abi.StatusBadArgument
	}
	name, ok := vm.mem.Read(uint32(s[1]), uint32(s[2]))
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	h := vm.host
	key := metricKey{typ, string(name)}
	h.metricMu.Lock()
	m, ok := h.metrics[key]
	if !ok {
		m = &metric{typ: typ, name: key.name}
		h.metrics[key] = m
	}
	h.metricMu.Unlock()
	for id, have := range vm.metricIDs {
		if have == m {
			return status(vm.putU32(uint32(s[3]), id))
		}
	}
	vm.nextMetric++
	id := vm.nextMetric<<2 | uint32(typ)
	vm.metricIDs[id] = m
	return status(vm.putU32(uint32(s[3]), id))
}

func (vm *VM) incrementMetric(id uint32, offset int64) abi.Status {
	m, ok := vm.metricIDs[id]
	if !ok {
		return abi.StatusNotFound
	}
	switch m.typ {
	case abi.MetricCounter:
		if offset <= 0 {
			return abi.StatusBadArgument
		}
		m.value.Add(offset)
	case abi.MetricGauge:
		m.value.Add(offset)
	default:
		return abi.StatusBadArgument
	}
	return abi.StatusOK
}

func (vm *VM) recordMetric(id uint32, value uint64) abi.Status {
	m, ok := vm.metricIDs[id]
	if !ok {
		return abi.StatusNotFound
	}
	switch m.typ {
	case abi.MetricCounter:
		m.value.Add(int64(value))
	case abi.MetricGauge:
		m.value.Store(int64(value))
	default:
		m.value.Add(1)
	}
	return abi.StatusOK
}

func (vm *VM) getMetric(id, ptr uint32) abi.Status {
	m, ok := vm.metricIDs[id]
	if !ok {
		return abi.StatusNotFound
	}
	if m.typ == abi.MetricHistogram {
		return abi.StatusBadArgument
	}
	return status(vm.mem.WriteUint64Le(ptr, uint64(m.value.Load())))
}
