package wasmhost

import (
	"sync/atomic"

	"switchyard/internal/abi"
)

// Metrics with Envoy's rules (proxy-wasm-host-reference.md §3f): the guest's names are
// kept as they are (Envoy's /stats shows the bare name), one metric per (type, name)
// across every VM of the Host, ids per VM with the type in the low 2 bits.

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
