package envoyconfig

import (
	"fmt"
	"strconv"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// unmarshalStrict resolves Any contents through the global registry only.
var unmarshalStrict = proto.UnmarshalOptions{}

// located is a piece of the config with the path it was found at.
type located[T any] struct {
	path string
	msg  T
}

// httpFilter is one entry of an HTTP connection manager's http_filters, unpacked.
type httpFilter struct {
	path     string
	name     string
	typeName string        // full protobuf name of the typed_config, "" when absent
	msg      proto.Message // the unpacked typed_config, nil when absent or not unpackable
}

// manager is an HTTP connection manager found in a listener's filter chain.
type manager struct {
	path    string
	hcm     *hcmv3.HttpConnectionManager
	filters []httpFilter
}

// view is the parts of a bootstrap the rules look at, unpacked once.
type view struct {
	services    []located[*wasmv3.WasmService]
	managers    []manager
	wasmFilters []located[*wasmfilterv3.Wasm]
	clusters    map[string]*clusterv3.Cluster
	clusterList []located[*clusterv3.Cluster]
	ps          problems // what got in the way of unpacking
}

func inspect(bs *bootstrapv3.Bootstrap) *view {
	v := &view{clusters: map[string]*clusterv3.Cluster{}}
	for i, ext := range bs.GetBootstrapExtensions() {
		path := fmt.Sprintf("bootstrap_extensions[%s].typed_config", elementLabel(ext.GetName(), i))
		if svc, ok := v.unpack(ext.GetTypedConfig(), path).(*wasmv3.WasmService); ok {
			path += "(WasmService)"
			v.services = append(v.services, located[*wasmv3.WasmService]{path, svc})
		}
	}
	for _, l := range bs.GetStaticResources().GetListeners() {
		chains := l.GetFilterChains()
		if dc := l.GetDefaultFilterChain(); dc != nil {
			chains = append(append([]*listenerv3.FilterChain{}, chains...), dc)
		}
		for ci, fc := range chains {
			for fi, f := range fc.GetFilters() {
				path := fmt.Sprintf("static_resources.listeners[%s].filter_chains[%d].filters[%s].typed_config", l.GetName(), ci, elementLabel(f.GetName(), fi))
				if hcm, ok := v.unpack(f.GetTypedConfig(), path).(*hcmv3.HttpConnectionManager); ok {
					v.addManager(path+"(HttpConnectionManager)", hcm)
				}
			}
		}
	}
	for _, c := range bs.GetStaticResources().GetClusters() {
		v.clusters[c.GetName()] = c
		v.clusterList = append(v.clusterList, located[*clusterv3.Cluster]{"static_resources.clusters[" + c.GetName() + "]", c})
	}
	return v
}

func (v *view) addManager(path string, hcm *hcmv3.HttpConnectionManager) {
	m := manager{path: path, hcm: hcm}
	for i, f := range hcm.GetHttpFilters() {
		hf := httpFilter{path: fmt.Sprintf("%s.http_filters[%s].typed_config", path, elementLabel(f.GetName(), i)), name: f.GetName()}
		if a := f.GetTypedConfig(); a != nil {
			hf.typeName = string(a.MessageName())
			hf.msg = v.unpack(a, hf.path)
			hf.path += "(" + shortName(a.MessageName()) + ")"
		}
		if w, ok := hf.msg.(*wasmfilterv3.Wasm); ok {
			v.wasmFilters = append(v.wasmFilters, located[*wasmfilterv3.Wasm]{hf.path, w})
		}
		m.filters = append(m.filters, hf)
	}
	v.managers = append(v.managers, m)
}

// unpack returns the message inside a, or nil (with a problem noted) when it cannot.
func (v *view) unpack(a *anypb.Any, path string) proto.Message {
	if a == nil {
		return nil
	}
	m, err := anypb.UnmarshalNew(a, unmarshalStrict)
	if err != nil {
		v.ps.add(RuleUnpack, path, "cannot unpack %q: %v", a.GetTypeUrl(), err)
		return nil
	}
	return m
}

// elementLabel matches the walker's paths: a list element by name, else by index.
func elementLabel(name string, i int) string {
	if name != "" {
		return name
	}
	return strconv.Itoa(i)
}
