package envoyconfig

import (
	"os"
	"strings"
	"sync"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// repoConfig is the project's envoy.yaml, the file these tests guard.
const repoConfig = "../../envoy.yaml"

var repoText = sync.OnceValues(func() (string, error) {
	b, err := os.ReadFile(repoConfig)
	return string(b), err
})

// configText returns envoy.yaml with each old→new replacement applied in turn. Every
// old string must occur exactly once, so a case can never silently test the unchanged
// file after envoy.yaml is edited.
func configText(t *testing.T, replace ...string) string {
	t.Helper()
	text, err := repoText()
	if err != nil {
		t.Fatal(err)
	}
	if len(replace)%2 != 0 {
		t.Fatalf("replacements come in old, new pairs; got %d strings", len(replace))
	}
	for i := 0; i < len(replace); i += 2 {
		old, new := replace[i], replace[i+1]
		if n := strings.Count(text, old); n != 1 {
			t.Fatalf("%q occurs %d times in %s, want once; update the test to the file", old, n, repoConfig)
		}
		text = strings.Replace(text, old, new, 1)
	}
	return text
}

// loadText parses a (mutated) config, failing the test if it does not load.
func loadText(t *testing.T, text string) *bootstrapv3.Bootstrap {
	t.Helper()
	bs, err := Parse([]byte(text))
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
