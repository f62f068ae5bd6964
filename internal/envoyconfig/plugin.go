package envoyconfig

import (
	"errors"
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// PluginConfigurations returns the plugin configuration bytes exactly as Envoy hands
// them to on_configure: for the bootstrap WasmService (root "sync") and for the first
// HTTP wasm filter found in a listener (root "router"). Envoy passes a StringValue's or
// BytesValue's contents without the wrapper; anything else is an error here.
func PluginConfigurations(bs *bootstrapv3.Bootstrap) (sync, router []byte, err error) {
	v := inspect(bs)
	if len(v.services) == 0 {
		return nil, nil, errors.New("no envoy.bootstrap.wasm WasmService in bootstrap_extensions")
	}
	if len(v.wasmFilters) == 0 {
		return nil, nil, errors.New("no envoy.filters.http.wasm filter in any listener's HTTP connection manager")
	}
	sync, err = configurationBytes(v.services[0].msg.GetConfig())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", v.services[0].path, err)
	}
	router, err = configurationBytes(v.wasmFilters[0].msg.GetConfig())
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", v.wasmFilters[0].path, err)
	}
	return sync, router, nil
}

func configurationBytes(pc *wasmv3.PluginConfig) ([]byte, error) {
	a := pc.GetConfiguration()
	if a == nil {
		return nil, errors.New("config.configuration is missing; set it to a google.protobuf.StringValue holding the plugin's JSON")
	}
	m, err := anypb.UnmarshalNew(a, unmarshalStrict)
	if err != nil {
		return nil, fmt.Errorf("config.configuration: %w", err)
	}
	switch c := m.(type) {
	case *wrapperspb.StringValue:
		return []byte(c.GetValue()), nil
	case *wrapperspb.BytesValue:
		return c.GetValue(), nil
	}
	return nil, fmt.Errorf("config.configuration is a %s; use google.protobuf.StringValue holding the plugin's JSON, "+
		"which Envoy passes to the plugin byte for byte", m.ProtoReflect().Descriptor().FullName())
}
