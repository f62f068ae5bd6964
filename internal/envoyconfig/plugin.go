package envoyconfig

import (
	"errors"
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// PluginConfigurations returns the plugin configuration bytes exactly as Envoy hands
// them to on_configure: for the bootstrap WasmService (root "sync") and for the first
// HTTP wasm filter found in a listener (root "router"). Both must be set.
func PluginConfigurations(bs *bootstrapv3.Bootstrap) (sync, router []byte, err error) {
	c := Inspect(bs)
	if len(c.Services) == 0 {
		return nil, nil, errors.New("no envoy.bootstrap.wasm WasmService in bootstrap_extensions")
	}
	if len(c.WasmFilters) == 0 {
		return nil, nil, errors.New("no envoy.filters.http.wasm filter in any listener's HTTP connection manager")
	}
	read := func(pc *wasmv3.PluginConfig, path string) ([]byte, error) {
		if pc.GetConfiguration() == nil {
			return nil, fmt.Errorf("%s: %w", path, ErrNoConfiguration)
		}
		b, err := ConfigurationBytes(pc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return b, nil
	}
	if sync, err = read(c.Services[0].Msg.GetConfig(), c.Services[0].Path); err != nil {
		return nil, nil, err
	}
	if router, err = read(c.WasmFilters[0].Msg.GetConfig(), c.WasmFilters[0].Path); err != nil {
		return nil, nil, err
	}
	return sync, router, nil
}

// ErrNoConfiguration is the error for a plugin without config.configuration where the
// caller needs one.
var ErrNoConfiguration = errors.New("config.configuration is missing; set it to a google.protobuf.StringValue holding the plugin's JSON")

// ConfigurationBytes returns what Envoy passes to the plugin's on_configure: a
// StringValue's or BytesValue's contents without the wrapper, nothing when
// configuration is unset. Any other type is an error.
func ConfigurationBytes(pc *wasmv3.PluginConfig) ([]byte, error) {
	a := pc.GetConfiguration()
	if a == nil {
		return nil, nil
	}
	m, err := Unpack(a)
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
