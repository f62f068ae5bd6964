package envoyconfig

import (
	"fmt"
	"strconv"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	dfpclusterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/dynamic_forward_proxy/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// Located is a piece of the config with the field path it was found at, such as
// static_resources.clusters[app].
type Located[T any] struct {
	Path string
	Msg  T
}

// Part is one named typed_config entry (a bootstrap extension, an HTTP filter), unpacked.
type Part struct {
	Path     string        // the typed_config's field path, with the short type name appended
	Name     string        // the entry's name
	TypeName string        // full protobuf name of the typed_config, "" when absent
	Msg      proto.Message // the unpacked typed_config, nil when absent or not unpackable
}

// Manager is an HTTP connection manager found in a listener's filter chain.
type Manager struct {
	Path    string
	HCM     *hcmv3.HttpConnectionManager
	Filters []Part // http_filters in the file's order
}

// Cluster is a static cluster with the typed configs of it that Switchyard reads.
type Cluster struct {
	Path string
	Msg  *clusterv3.Cluster
	// DFP is cluster_type's typed_config when it is a dynamic forward proxy
	// ClusterConfig (whatever cluster_type's name); nil otherwise.
	DFP *dfpclusterv3.ClusterConfig
	// HTTPOptions is typed_extension_protocol_options[HTTPOptionsKey] when it is one;
	// nil otherwise.
	HTTPOptions *upstreamhttpv3.HttpProtocolOptions
}

// HTTPOptionsKey is the typed_extension_protocol_options key of a cluster's upstream
// HTTP settings.
const HTTPOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// Fault is a typed_config that could not be unpacked.
type Fault struct {
	Path, TypeURL string
	Err           error
}

// Config is a bootstrap with the parts Switchyard reads unpacked once: the bootstrap
// extensions (the wasm service among them), every inline HTTP connection manager with
// its filters, the wasm filters and the clusters with their DFP and HTTP settings. The dev proxy builds what it serves
// from it; the offline checker (internal/testkit/envoycheck) runs its rules on it.
type Config struct {
	Bootstrap   *bootstrapv3.Bootstrap
	Extensions  []Part // bootstrap_extensions in the file's order
	Services    []Located[*wasmv3.WasmService]
	Managers    []Manager
	WasmFilters []Located[*wasmfilterv3.Wasm]
	Clusters    map[string]*Cluster
	ClusterList []*Cluster // the clusters in the file's order
	Faults      []Fault    // what got in the way of unpacking
}

// Inspect unpacks the parts of bs that Config holds. A typed_config that does not
// unpack is left nil in its Part and recorded in Faults.
func Inspect(bs *bootstrapv3.Bootstrap) *Config {
	c := &Config{Bootstrap: bs, Clusters: map[string]*Cluster{}}
	for i, ext := range bs.GetBootstrapExtensions() {
		p := c.part(fmt.Sprintf("bootstrap_extensions[%s].typed_config", ElementLabel(ext.GetName(), i)), ext.GetName(), ext.GetTypedConfig())
		c.Extensions = append(c.Extensions, p)
		if svc, ok := p.Msg.(*wasmv3.WasmService); ok {
			c.Services = append(c.Services, Located[*wasmv3.WasmService]{p.Path, svc})
		}
	}
	for _, l := range bs.GetStaticResources().GetListeners() {
		chains := l.GetFilterChains()
		if dc := l.GetDefaultFilterChain(); dc != nil {
			chains = append(append([]*listenerv3.FilterChain{}, chains...), dc)
		}
		for ci, fc := range chains {
			for fi, f := range fc.GetFilters() {
				path := fmt.Sprintf("static_resources.listeners[%s].filter_chains[%d].filters[%s].typed_config", l.GetName(), ci, ElementLabel(f.GetName(), fi))
				if hcm, ok := c.Unpack(f.GetTypedConfig(), path).(*hcmv3.HttpConnectionManager); ok {
					c.addManager(path+"(HttpConnectionManager)", hcm)
				}
			}
		}
	}
	for _, cl := range bs.GetStaticResources().GetClusters() {
		lc := &Cluster{Path: "static_resources.clusters[" + cl.GetName() + "]", Msg: cl}
		if ct := cl.GetClusterType(); ct != nil {
			lc.DFP, _ = c.Unpack(ct.GetTypedConfig(), lc.Path+".cluster_type").(*dfpclusterv3.ClusterConfig)
		}
		if a, ok := cl.GetTypedExtensionProtocolOptions()[HTTPOptionsKey]; ok {
			lc.HTTPOptions, _ = c.Unpack(a, lc.Path+".typed_extension_protocol_options").(*upstreamhttpv3.HttpProtocolOptions)
		}
		c.Clusters[cl.GetName()] = lc
		c.ClusterList = append(c.ClusterList, lc)
	}
	return c
}

func (c *Config) addManager(path string, hcm *hcmv3.HttpConnectionManager) {
	m := Manager{Path: path, HCM: hcm}
	for i, f := range hcm.GetHttpFilters() {
		p := c.part(fmt.Sprintf("%s.http_filters[%s].typed_config", path, ElementLabel(f.GetName(), i)), f.GetName(), f.GetTypedConfig())
		if w, ok := p.Msg.(*wasmfilterv3.Wasm); ok {
			c.WasmFilters = append(c.WasmFilters, Located[*wasmfilterv3.Wasm]{p.Path, w})
		}
		m.Filters = append(m.Filters, p)
	}
	c.Managers = append(c.Managers, m)
}

func (c *Config) part(path, name string, a *anypb.Any) Part {
	p := Part{Path: path, Name: name}
	if a != nil {
		p.TypeName = string(a.MessageName())
		p.Msg = c.Unpack(a, p.Path)
		p.Path += "(" + ShortName(a.MessageName()) + ")"
	}
	return p
}

// Unpack returns the message inside a, or nil when a is nil or does not unpack (then
// recorded in Faults with path).
func (c *Config) Unpack(a *anypb.Any, path string) proto.Message {
	if a == nil {
		return nil
	}
	m, err := Unpack(a)
	if err != nil {
		c.Faults = append(c.Faults, Fault{Path: path, TypeURL: a.GetTypeUrl(), Err: err})
		return nil
	}
	return m
}

// Unpack returns the message inside a. Its type resolves only through the types this
// package registers (register.go), as Load does.
func Unpack(a *anypb.Any) (proto.Message, error) {
	return anypb.UnmarshalNew(a, proto.UnmarshalOptions{})
}

// ElementLabel names a list element in a field path: by its name, else by its index.
func ElementLabel(name string, i int) string {
	if name != "" {
		return name
	}
	return strconv.Itoa(i)
}

// ShortName is a full protobuf name without its package: HttpConnectionManager.
func ShortName(n protoreflect.FullName) string {
	return string(n.Name())
}
