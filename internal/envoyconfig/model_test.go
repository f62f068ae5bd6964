package envoyconfig

import (
	"strings"
	"testing"

	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The project's envoy.yaml unpacks whole: its wasm service, one HTTP connection manager
// with the four filters in the file's order, the wasm filter among them, every cluster.
func TestInspectRepoConfig(t *testing.T) {
	bs, err := Load("../../envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := Inspect(bs)
	if len(c.Faults) != 0 {
		t.Errorf("faults: %v", c.Faults)
	}
	if len(c.Extensions) != 1 || len(c.Services) != 1 || !strings.HasSuffix(c.Services[0].Path, "(WasmService)") {
		t.Errorf("extensions %d, services %v; want the one WasmService", len(c.Extensions), c.Services)
	}
	if len(c.Managers) != 1 {
		t.Fatalf("%d HTTP connection managers, want 1", len(c.Managers))
	}
	var got []string
	for _, f := range c.Managers[0].Filters {
		if f.Msg == nil {
			t.Errorf("%s: not unpacked", f.Path)
		}
		got = append(got, f.Name)
	}
	want := "envoy.filters.http.cors envoy.filters.http.wasm envoy.filters.http.dynamic_forward_proxy envoy.filters.http.router"
	if strings.Join(got, " ") != want {
		t.Errorf("filters %v, want %s", got, want)
	}
	if len(c.WasmFilters) != 1 || !strings.Contains(c.WasmFilters[0].Path, "http_filters[envoy.filters.http.wasm]") {
		t.Errorf("wasm filters %v", c.WasmFilters)
	}
	if len(c.ClusterList) != len(bs.GetStaticResources().GetClusters()) || len(c.Clusters) != len(c.ClusterList) {
		t.Errorf("%d clusters listed, %d by name, %d in the file", len(c.ClusterList), len(c.Clusters), len(bs.GetStaticResources().GetClusters()))
	}
	if d := c.Clusters["dynamic_forward_proxy_cluster"]; d == nil || d.DFP == nil || d.HTTPOptions == nil {
		t.Errorf("the DFP cluster %+v: want its ClusterConfig and HttpProtocolOptions unpacked", d)
	}
	if r := c.Clusters["registrar"]; r == nil || r.DFP != nil {
		t.Errorf("the registrar cluster %+v: want it, without a DFP ClusterConfig", r)
	}
}

// ConfigurationBytes unwraps a StringValue or BytesValue, gives nothing for an unset
// configuration and refuses any other type by name.
func TestConfigurationBytes(t *testing.T) {
	with := func(m *anypb.Any) *wasmv3.PluginConfig { return &wasmv3.PluginConfig{Configuration: m} }
	s, _ := anypb.New(wrapperspb.String(`{"a":1}`))
	b, _ := anypb.New(wrapperspb.Bytes([]byte("{}")))
	i, _ := anypb.New(wrapperspb.Int64(7))
	if got, err := ConfigurationBytes(with(s)); err != nil || string(got) != `{"a":1}` {
		t.Errorf("StringValue: %q, %v", got, err)
	}
	if got, err := ConfigurationBytes(with(b)); err != nil || string(got) != "{}" {
		t.Errorf("BytesValue: %q, %v", got, err)
	}
	if got, err := ConfigurationBytes(with(nil)); err != nil || got != nil {
		t.Errorf("unset: %q, %v; want nothing", got, err)
	}
	if _, err := ConfigurationBytes(with(i)); err == nil || !strings.Contains(err.Error(), "google.protobuf.Int64Value") {
		t.Errorf("Int64Value: %v, want an error naming the type", err)
	}
}
