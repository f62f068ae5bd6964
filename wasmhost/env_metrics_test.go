package wasmhost

import (
	"testing"

	"switchyard/internal/abi"
)

// Metrics are keyed by the guest's name across VMs; a counter refuses offset 0.
func TestMetrics(t *testing.T) {
	h := newHost(t, Options{})
	a := startProbe(t, h, PluginConfig{})
	b := startProbe(t, h, PluginConfig{})
	for _, vm := range []*VM{a, b, a} {
		mustRequest(t, vm, "/")
	}
	if v, ok := h.Metric("probe.requests"); !ok || v != 3 {
		t.Errorf("Metric(probe.requests) = %d, %v; want 3 across both VMs", v, ok)
	}
	mustRequest(t, a, "/metric0")
	if got := logLines(h, "increment0"); len(got) != 1 || got[0] != "increment0 status=2" {
		t.Errorf("counter increment by 0: %q, want BadArgument (2)", got)
	}
	if m := h.Metrics(); m["probe.requests"] != 4 {
		t.Errorf("Metrics() = %v", m)
	}
	if c := h.HostcallCounts(); c["proxy_increment_metric"] != 5 || c["proxy_log"] == 0 {
		t.Errorf("HostcallCounts() = %v", c)
	}
}

// Envoy's metric rules per type: ids carry the type, counters refuse offsets <= 0,
// histograms refuse increment and get, unknown ids are NotFound.
func TestMetricStatuses(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{})
	id := guestBuf(t, vm, 4)
	out := guestBuf(t, vm, 8)
	define := func(typ uint64, name string) (abi.Status, uint64) {
		p, n := guestData(t, vm, name)
		st := statusOf(hostcall(t, vm, nil, "env", "proxy_define_metric", typ, p, n, id))
		return st, uint64(readU32(t, vm, id))
	}
	if st, _ := define(3, "bad"); st != abi.StatusBadArgument {
		t.Errorf("type 3: %v, want BadArgument", st)
	}
	_, counter := define(uint64(abi.MetricCounter), "t.counter")
	_, gauge := define(uint64(abi.MetricGauge), "t.gauge")
	_, hist := define(uint64(abi.MetricHistogram), "t.hist")
	if counter&3 != 0 || gauge&3 != 1 || hist&3 != 2 {
		t.Errorf("ids %d %d %d do not carry the type in the low 2 bits", counter, gauge, hist)
	}
	if _, again := define(uint64(abi.MetricGauge), "t.gauge"); again != gauge {
		t.Errorf("defining again gave id %d, want %d", again, gauge)
	}
	neg := uint64(0xFFFF_FFFF_FFFF_FFFB) // -5 as i64
	steps := []struct {
		name string
		fn   string
		args []uint64
		want abi.Status
	}{
		{"counter +3", "proxy_increment_metric", []uint64{counter, 3}, abi.StatusOK},
		{"counter -5", "proxy_increment_metric", []uint64{counter, neg}, abi.StatusBadArgument},
		{"counter record 4", "proxy_record_metric", []uint64{counter, 4}, abi.StatusOK},
		{"gauge -5", "proxy_increment_metric", []uint64{gauge, neg}, abi.StatusOK},
		{"gauge record 7", "proxy_record_metric", []uint64{gauge, 7}, abi.StatusOK},
		{"gauge -5 again", "proxy_increment_metric", []uint64{gauge, neg}, abi.StatusOK},
		{"histogram increment", "proxy_increment_metric", []uint64{hist, 1}, abi.StatusBadArgument},
		{"histogram record", "proxy_record_metric", []uint64{hist, 9}, abi.StatusOK},
		{"histogram get", "proxy_get_metric", []uint64{hist, out}, abi.StatusBadArgument},
		{"unknown increment", "proxy_increment_metric", []uint64{999, 1}, abi.StatusNotFound},
		{"unknown record", "proxy_record_metric", []uint64{999, 1}, abi.StatusNotFound},
		{"unknown get", "proxy_get_metric", []uint64{999, out}, abi.StatusNotFound},
	}
	for _, st := range steps {
		if got := statusOf(hostcall(t, vm, nil, "env", st.fn, st.args...)); got != st.want {
			t.Errorf("%s: %v, want %v", st.name, got, st.want)
		}
	}
	for _, c := range []struct {
		id   uint64
		want int64
	}{{counter, 7}, {gauge, 2}} {
		if st := statusOf(hostcall(t, vm, nil, "env", "proxy_get_metric", c.id, out)); st != abi.StatusOK || int64(readU64(t, vm, out)) != c.want {
			t.Errorf("get %d = %v %d, want %d", c.id, st, int64(readU64(t, vm, out)), c.want)
		}
	}
	if v, _ := h.Metric("t.hist"); v != 1 {
		t.Errorf("histogram count = %d, want 1 recorded value", v)
	}
}
