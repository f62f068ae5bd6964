package envoycheck

import (
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"switchyard/internal/envoyconfig"
)

// loadText parses a (mutated) config, failing the test if it does not load.
func loadText(t *testing.T, text string) *bootstrapv3.Bootstrap {
	t.Helper()
	bs, err := envoyconfig.Parse([]byte(text))
	if err != nil {
		t.Fatalf("mutated config does not load: %v", err)
	}
	return bs
}

// withRule reports whether ps holds a problem of the rule, and lists the rules found.
func withRule(ps []Problem, rule Rule) (bool, []Rule) {
	var found []Rule
	ok := false
	for _, p := range ps {
		found = append(found, p.Rule)
		ok = ok || p.Rule == rule
	}
	return ok, found
}

// editManager changes the first listener's HTTP connection manager in place.
func editManager(t *testing.T, bs *bootstrapv3.Bootstrap, edit func(*hcmv3.HttpConnectionManager)) {
	t.Helper()
	f := bs.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0]
	var hcm hcmv3.HttpConnectionManager
	if err := f.GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	edit(&hcm)
	a, err := anypb.New(&hcm)
	if err != nil {
		t.Fatal(err)
	}
	f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
}
