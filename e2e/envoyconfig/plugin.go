package envoyconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// PluginConfig is the filter's plugin configuration (design.md "Filter plugin
// configuration"), as far as this package needs to understand it.
type PluginConfig struct {
	Header       string          `json:"header"`
	PathPrefixes []string        `json:"path_prefixes"`
	DefaultPort  int             `json:"default_port"`
	StripHeader  bool            `json:"strip_header"`
	Registrar    RegistrarConfig `json:"registrar"`
}

// RegistrarConfig is where the sync root long-polls for the route table.
type RegistrarConfig struct {
	Cluster     string `json:"cluster"`
	Authority   string `json:"authority"`
	Path        string `json:"path"`
	WaitSeconds int    `json:"wait_seconds"`
	Token       string `json:"token"`
}

// maxWaitSeconds is the filter's bound on registrar.wait_seconds.
const maxWaitSeconds = 600

// The keys the filter knows; it rejects any other. Matched case-sensitively, as the
// filter does (encoding/json alone would accept "Header").
var (
	pluginKeys    = []string{"header", "path_prefixes", "default_port", "strip_header", "registrar"}
	registrarKeys = []string{"cluster", "authority", "path", "wait_seconds", "token"}
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

// DefaultPluginConfig is what the filter assumes for keys the configuration leaves out.
func DefaultPluginConfig() PluginConfig {
	return PluginConfig{
		Header:       "x-server-name",
		PathPrefixes: []string{"/sys"},
		DefaultPort:  80,
		Registrar:    RegistrarConfig{Cluster: "registrar", Authority: "registrar", Path: "/v1/routes", WaitSeconds: 30},
	}
}

// ParsePluginConfig decodes a plugin configuration as strictly as the filter does:
// one JSON object, only the known keys (case-sensitive) at the top level and inside
// "registrar", values of the right types and in range. Keys left out keep
// DefaultPluginConfig's values. The filter's own on_configure stays the authority;
// this is what can be judged without running it.
func ParsePluginConfig(data []byte) (PluginConfig, error) {
	pc := DefaultPluginConfig()
	var top map[string]json.RawMessage
	if err := decodeOne(data, &top); err != nil {
		return pc, fmt.Errorf("plugin configuration is not a JSON object: %w", err)
	}
	if err := onlyKeys(top, pluginKeys, ""); err != nil {
		return pc, err
	}
	if raw, ok := top["registrar"]; ok {
		var reg map[string]json.RawMessage
		if err := decodeOne(raw, &reg); err != nil {
			return pc, fmt.Errorf("plugin configuration: registrar is not a JSON object: %w", err)
		}
		if err := onlyKeys(reg, registrarKeys, "registrar."); err != nil {
			return pc, err
		}
	}
	if err := decodeOne(data, &pc); err != nil {
		return pc, fmt.Errorf("plugin configuration: %w", err)
	}
	return pc, pc.check()
}

func (pc PluginConfig) check() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("plugin configuration: "+format, args...))
	}
	if pc.Header == "" {
		bad("header must name the request header that carries the server name")
	}
	if len(pc.PathPrefixes) == 0 {
		bad("path_prefixes needs at least one prefix, e.g. [\"/sys\"]")
	}
	for _, p := range pc.PathPrefixes {
		if !strings.HasPrefix(p, "/") || (len(p) > 1 && strings.HasSuffix(p, "/")) {
			bad("path_prefixes entry %q must start with / and not end with /", p)
		}
	}
	if pc.DefaultPort < 1 || pc.DefaultPort > 65535 {
		bad("default_port %d is not a port; use 1 to 65535", pc.DefaultPort)
	}
	if pc.Registrar.Cluster == "" {
		bad("registrar.cluster must name the proxy's cluster for the registrar")
	}
	if pc.Registrar.WaitSeconds < 1 || pc.Registrar.WaitSeconds > maxWaitSeconds {
		bad("registrar.wait_seconds %d is out of range; use 1 to %d", pc.Registrar.WaitSeconds, maxWaitSeconds)
	}
	if !strings.HasPrefix(pc.Registrar.Path, "/") {
		bad("registrar.path %q must start with /, e.g. /v1/routes", pc.Registrar.Path)
	}
	return errors.Join(errs...)
}

func decodeOne(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON object")
	}
	return nil
}

func onlyKeys(obj map[string]json.RawMessage, known []string, prefix string) error {
	var unknown []string
	for k := range obj {
		if !slices.Contains(known, k) {
			unknown = append(unknown, prefix+k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return fmt.Errorf("plugin configuration has unknown key(s) %s; the filter rejects them (known: %s)",
		strings.Join(unknown, ", "), prefix+strings.Join(known, ", "+prefix))
}
