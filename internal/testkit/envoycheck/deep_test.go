package envoycheck

import (
	"testing"
)

// The reason ValidateDeep exists: the generated ValidateAll does not look inside Any,
// so a route with an empty cluster name (inside the HTTP connection manager's
// typed_config) passes it.
func TestTopLevelValidateAllMissesAnyContents(t *testing.T) {
	bs := loadText(t, RepoConfigText(t, "cluster: frontend\n", "cluster: \"\"\n"))
	if err := bs.ValidateAll(); err != nil {
		t.Fatalf("top-level ValidateAll now sees inside Any (%v); ValidateDeep's walk may be redundant", err)
	}
	if ok, found := withRule(ValidateDeep(bs), RuleSchema); !ok {
		t.Errorf("ValidateDeep found %v, want a %s problem for the empty cluster", found, RuleSchema)
	}
}

func TestValidateDeepFinds(t *testing.T) {
	tests := []struct {
		name    string
		replace []string
		want    Rule
	}{
		{
			name:    "rule broken inside the connection manager's typed_config",
			replace: []string{"cluster: frontend\n", "cluster: \"\"\n"},
			want:    RuleSchema,
		},
		{
			name:    "rule broken inside a typed_per_filter_config entry",
			replace: []string{"- exact: https://cms.example.com", "- prefix: \"\""},
			want:    RuleSchema,
		},
		{
			name:    "rule broken in an Any nested in an Any (DNS cache name)",
			replace: []string{"name: sys_dns_cache\n", "name: \"\"\n"},
			want:    RuleSchema,
		},
		{
			name:    "rule broken outside any Any",
			replace: []string{"connect_timeout: 2s\n    per_connection_buffer_limit_bytes: 32768\n    # MUST be CLUSTER_PROVIDED", "connect_timeout: 0s\n    # MUST be CLUSTER_PROVIDED"},
			want:    RuleSchema,
		},
		{
			name:    "negative route timeout",
			replace: []string{"timeout: 15s", "timeout: -15s"},
			want:    RuleDuration,
		},
		{
			name:    "negative duration in the bootstrap",
			replace: []string{"idle_timeout: 90s", "idle_timeout: -0.5s"},
			want:    RuleDuration,
		},
		{
			name:    "deprecated field (fail_open)",
			replace: []string{"name: switchyard-router\n", "name: switchyard-router\n                fail_open: true\n"},
			want:    RuleDeprecated,
		},
		{
			name:    "deprecated field (virtual host cors)",
			replace: []string{"domains: [\"*\"]", "domains: [\"*\"]\n              cors: {allow_methods: GET}"},
			want:    RuleDeprecated,
		},
		{
			name: "TypedStruct hides its contents",
			replace: []string{
				"\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n              # No x-envoy-* headers added toward upstreams or clients.\n              suppress_envoy_headers: true",
				"\"@type\": type.googleapis.com/xds.type.v3.TypedStruct\n              type_url: type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n              value: {suppress_envoy_headers: yes}",
			},
			want: RuleTypedStruct,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps := ValidateDeep(loadText(t, RepoConfigText(t, tc.replace...)))
			if ok, found := withRule(ps, tc.want); !ok {
				t.Errorf("ValidateDeep found %v, want %s", found, tc.want)
			}
			for _, p := range ps {
				t.Log(p)
			}
		})
	}
}

// A config built in Go (not through Load) can carry an Any whose type is not
// registered; both checkers say so instead of skipping it.
func TestUnregisteredTypeIsReported(t *testing.T) {
	bs := loadText(t, RepoConfigText(t))
	bs.BootstrapExtensions[0].GetTypedConfig().TypeUrl = "type.googleapis.com/example.NotRegistered"
	for name, ps := range map[string][]Problem{"ValidateDeep": ValidateDeep(bs), "CheckSemantics": CheckSemantics(bs)} {
		if ok, found := withRule(ps, RuleUnpack); !ok {
			t.Errorf("%s found %v, want %s", name, found, RuleUnpack)
		}
	}
}
