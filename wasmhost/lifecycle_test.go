package wasmhost

import (
	"context"
	"errors"
	"slices"
	"strings"
	"switchyard/internal/contract"
	"testing"
)

// The start sequence and the stream end run in Envoy's order, with the VM and plugin
// configuration and the plugin_* properties available.
func TestLifecycleOrder(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{Name: "p1", RootID: contract.RootSync, VMID: "vm-a",
		VMConfig: []byte("VMC"), Configuration: []byte("CFG")})
	s, _ := mustRequest(t, vm, "/")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := vm.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range h.Logs() {
		got = append(got, e.Message)
	}
	want := []string{
		"probe init",
		"context_create 1 0",
		"vm_start 1 vm_config=VMC",
		"configure 1 status=0 config=CFG root_id=" + contract.RootSync + " name=p1 vm_id=vm-a log_level=2",
		"context_create 2 1",
		"on_log 2", "on_done 2", "on_delete 2",
		"on_done 1", "on_delete 1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("callbacks:\n got %q\nwant %q", got, want)
	}
	if vm.RootContextID() != 1 {
		t.Errorf("RootContextID = %d, want 1", vm.RootContextID())
	}
	if _, err := vm.NewStream(StreamAttributes{}); !errors.Is(err, ErrVMDead) {
		t.Errorf("NewStream on a closed VM: %v, want ErrVMDead", err)
	}
}

func TestConfigureFalseFailsTheVM(t *testing.T) {
	h := newHost(t, Options{})
	_, err := loadProbe(t, h).NewVM(context.Background(), PluginConfig{Configuration: []byte("reject")})
	if err == nil || !strings.Contains(err.Error(), "on_configure returned false") {
		t.Fatalf("NewVM error = %v, want one naming on_configure", err)
	}
}

// Properties the filter reads: plugin_* everywhere, request attributes from the
// request headers and stream attributes, NotFound (1) for anything unknown.
func TestProperties(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{VMID: "vm-p"})
	cases := []struct{ name, want string }{
		{"plugin_vm_id", "plugin_vm_id=vm-p status=0"},
		{"plugin_root_id", "plugin_root_id=" + contract.RootRouter + " status=0"},
		{"request.path", "request.path=/prop?name=request.path status=0"},
		{"request.url_path", "request.url_path=/prop status=0"},
		{"request.method", "request.method=GET status=0"},
		{"request.host", "request.host=Example.test status=0"},
		{"request.scheme", "request.scheme=http status=0"},
		{"request.id", "request.id=req-1 status=0"},
		{"source.address", "source.address=10.0.0.7:41000 status=0"},
		{"node", "node= status=1"}, // removed in Envoy 1.33
		{"no.such.thing", "no.such.thing= status=1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustRequest(t, vm, "/prop?name="+tc.name)
			got := logLines(h, "prop "+tc.name+"=")
			if len(got) != 1 || got[0] != "prop "+tc.want {
				t.Fatalf("got %q, want %q", got, "prop "+tc.want)
			}
		})
	}
}

// Header edits are visible to the embedder; a non-zero result stops the stream.
func TestRequestHeaderActions(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{})
	cases := []struct {
		path      string
		action    Action
		authority string
	}{
		{"/", Continue, "Example.test"},
		{"/route", Continue, "backend:8080"},
		{"/stop", Stop, "Example.test"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			s, a := mustRequest(t, vm, tc.path)
			if a != tc.action {
				t.Errorf("action = %v, want %v", a, tc.action)
			}
			if got, _ := s.RequestHeaderMap().Get(":authority"); got != tc.authority {
				t.Errorf(":authority = %q, want %q", got, tc.authority)
			}
			if got, ok := s.RequestHeaderMap().Get("x-server-name"); !ok || got != "web-1" {
				t.Errorf("x-server-name = %q, %v: keys must be lower-cased and kept", got, ok)
			}
		})
	}
}

// A local response is applied when the callback returns (so the guest's later edits
// in the same callback still land) and always stops the stream.
func TestLocalResponseIsDeferredAndStops(t *testing.T) {
	w := &deferralWriter{}
	h := newHost(t, Options{LogOutput: w})
	vm := startProbe(t, h, PluginConfig{})
	s, err := vm.NewStream(StreamAttributes{})
	if err != nil {
		t.Fatal(err)
	}
	w.stream = s
	a, err := s.RequestHeaders(Headers{{":method", "GET"}, {":path", "/local"}, {":authority", "x"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if a != Stop {
		t.Errorf("action = %v; a local response must stop the stream though the guest returned Continue", a)
	}
	if !w.sawLine {
		t.Fatal("the guest's log line after send_local_response never reached LogOutput")
	}
	if w.visibleEarly {
		t.Error("LocalResponse was visible while the callback was still running; Envoy defers it")
	}
	lr := s.LocalResponse()
	if lr == nil {
		t.Fatal("no local response")
	}
	if lr.Status != 403 || lr.Details != "denied_by_probe" || string(lr.Body) != "no" || lr.GRPCStatus != -1 {
		t.Errorf("local response = %+v", lr)
	}
	if v, _ := lr.Headers.Get("x-probe"); v != "1" || lr.Headers[0][0] != "x-probe" {
		t.Errorf("local response headers = %v, want lower-cased x-probe: 1", lr.Headers)
	}
	if v, _ := s.RequestHeaderMap().Get("x-after-local"); v != "yes" {
		t.Error("an edit made after send_local_response in the same callback was lost")
	}
	s.Close()
}

// deferralWriter checks, while the guest is inside its callback, that the stream's
// local response is not visible yet.
type deferralWriter struct {
	stream       *Stream
	sawLine      bool
	visibleEarly bool
}

func (w *deferralWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "after local") && w.stream != nil {
		w.sawLine = true
		w.visibleEarly = w.stream.LocalResponse() != nil
	}
	return len(p), nil
}

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
