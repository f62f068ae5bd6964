package envoycheck

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"switchyard/internal/envoyconfig"
)

// The project's envoy.yaml loads strictly and breaks no rule.
func TestRepoConfigHasNoProblems(t *testing.T) {
	ps, err := Check(RepoConfigPath(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := Join(ps); err != nil {
		t.Errorf("%s has problems:\n%v", RepoConfigPath(t), err)
	}
}

// Both roots receive exactly the project's plugin configuration (keys: internal/pluginconfig).
func TestPluginConfigurationsAreTheDesignOnes(t *testing.T) {
	bs, err := envoyconfig.Load(RepoConfigPath(t))
	if err != nil {
		t.Fatal(err)
	}
	sync, router, err := envoyconfig.PluginConfigurations(bs)
	if err != nil {
		t.Fatal(err)
	}
	const design = `{"header":"x-server-name","path_prefixes":["/sys"],"default_port":80,"strip_header":false,
		"registrar":{"cluster":"registrar","authority":"registrar","path":"/v1/routes","wait_seconds":30,"token":""}}`
	var want any
	if err := json.Unmarshal([]byte(design), &want); err != nil {
		t.Fatal(err)
	}
	for root, got := range map[string][]byte{"sync": sync, "router": router} {
		var v any
		if err := json.Unmarshal(got, &v); err != nil {
			t.Fatalf("%s configuration is not JSON: %v\n%s", root, err, got)
		}
		if !reflect.DeepEqual(v, want) {
			t.Errorf("%s configuration = %s, want the design's %s", root, got, design)
		}
	}
}

// Loading is strict: what Envoy would refuse to parse does not load.
func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name    string
		replace []string
		want    string // in the error
	}{
		{
			name:    "unknown field",
			replace: []string{"singleton: true", "singleton: true\n    singelton: true"},
			want:    "singelton",
		},
		{
			name:    "unknown @type",
			replace: []string{"extensions.filters.http.cors.v3.Cors\n", "extensions.filters.http.cors.v3.Corz\n"},
			want:    "envoy.extensions.filters.http.cors.v3.Corz",
		},
		{
			name:    "unknown field inside a typed_config",
			replace: []string{"suppress_envoy_headers: true", "suppress_envoy_headers: true\n              suppress_all: true"},
			want:    "suppress_all",
		},
		{
			name:    "unknown enum value",
			replace: []string{"lb_policy: CLUSTER_PROVIDED", "lb_policy: CLUSTER_PROVIDE"},
			want:    "CLUSTER_PROVIDE",
		},
		{
			name:    "wrong value type",
			replace: []string{"port_value: 9901", "port_value: admin"},
			want:    "portValue",
		},
		{
			name:    "not YAML",
			replace: []string{"admin:\n", "admin: [\n"},
			want:    "not valid YAML",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := envoyconfig.Parse([]byte(RepoConfigText(t, tc.replace...)))
			if err == nil {
				t.Fatal("Parse accepted the config")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := envoyconfig.Load("does-not-exist.yaml"); err == nil || !strings.Contains(err.Error(), "does-not-exist.yaml") {
		t.Errorf("Load of a missing file: err = %v, want one naming the file", err)
	}
}
