package pluginconfig

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseDefaults(t *testing.T) {
	for _, in := range []string{"", "  \n", "{}"} {
		c, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("Parse(%q) = %+v, want the defaults %+v", in, c, Default())
		}
	}
	d := Default()
	want := Config{Header: "x-server-name", PathPrefixes: []string{"/sys"}, DefaultPort: 80, MaxFails: 1, FailTimeout: 10,
		Registrar: RegistrarConfig{Cluster: "registrar", Authority: "registrar", Path: "/v1/routes", WaitSeconds: 30}}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("Default() = %+v, want the documented defaults %+v", d, want)
	}
}

func TestParseValues(t *testing.T) {
	tests := []struct {
		name string
		json string
		want func(*Config)
	}{
		{"header lower-cased", `{"header":"X-Target-Server"}`, func(c *Config) { c.Header = "x-target-server" }},
		{"several prefixes", `{"path_prefixes":["/sys","/logs/v2"]}`, func(c *Config) { c.PathPrefixes = []string{"/sys", "/logs/v2"} }},
		{"root prefix", `{"path_prefixes":["/"]}`, func(c *Config) { c.PathPrefixes = []string{"/"} }},
		{"default port", `{"default_port":8080}`, func(c *Config) { c.DefaultPort = 8080 }},
		{"strip header", `{"strip_header":true}`, func(c *Config) { c.StripHeader = true }},
		{"registrar fields", `{"registrar":{"cluster":"reg","authority":"reg.local","path":"/routes","wait_seconds":5,"token":"s3cret"}}`,
			func(c *Config) {
				c.Registrar = RegistrarConfig{Cluster: "reg", Authority: "reg.local", Path: "/routes", WaitSeconds: 5, Token: "s3cret"}
			}},
		{"proxy id", `{"proxy_id":"sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local"}`, func(c *Config) { c.ProxyID = "sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local" }},
		{"empty proxy id is the default", `{"proxy_id":""}`, func(c *Config) {}},
		{"stale after", `{"stale_after_seconds":120}`, func(c *Config) { c.StaleAfterSeconds = 120 }},
		{"stale after 0 is the default", `{"stale_after_seconds":0}`, func(c *Config) {}},
		{"passive health", `{"max_fails":3,"fail_timeout":30}`, func(c *Config) { c.MaxFails, c.FailTimeout = 3, 30 }},
		{"max fails 0 turns it off", `{"max_fails":0}`, func(c *Config) { c.MaxFails = 0 }},
		{"partial registrar keeps other defaults", `{"registrar":{"token":"t"}}`, func(c *Config) { c.Registrar.Token = "t" }},
		{"token from the environment", `{"registrar":{"token_env":"SWITCHYARD_REGISTRAR_TOKEN"}}`, func(c *Config) { c.Registrar.TokenEnv = "SWITCHYARD_REGISTRAR_TOKEN" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.json))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

// Every refusal must name the key (or the problem) so the operator can fix it.
func TestParseRefusals(t *testing.T) {
	tests := []struct {
		name, json, wantInErr string
	}{
		{"not JSON", `{"header":`, "not valid JSON"},
		{"not an object", `["/sys"]`, "must be a JSON object"},
		{"trailing data", `{} {}`, "not valid JSON"},
		{"unknown top-level key", `{"headers":"x"}`, `unknown key "headers"`},
		{"key in another case", `{"Header":"x"}`, `unknown key "Header"`},
		{"unknown registrar key", `{"registrar":{"url":"http://x"}}`, `unknown key "registrar.url"`},
		{"duplicate key", `{"default_port":80,"default_port":81}`, `"default_port" appears twice`},
		{"header wrong type", `{"header":1}`, `key "header" must be a string`},
		{"header empty", `{"header":""}`, `key "header"`},
		{"header with space", `{"header":"x server"}`, `key "header"`},
		{"header pseudo", `{"header":":authority"}`, `key "header"`},
		{"prefixes wrong type", `{"path_prefixes":"/sys"}`, `key "path_prefixes" must be an array of strings`},
		{"prefix wrong element type", `{"path_prefixes":["/sys",2]}`, `key "path_prefixes" must be an array of strings`},
		{"prefixes empty", `{"path_prefixes":[]}`, "at least one prefix"},
		{"prefix without slash", `{"path_prefixes":["sys"]}`, `"sys" must start with '/'`},
		{"prefix with trailing slash", `{"path_prefixes":["/sys/"]}`, `"/sys/" must start with '/', not end with '/'`},
		{"prefix with query", `{"path_prefixes":["/sys?a"]}`, `"/sys?a" must start`},
		{"prefix with space", `{"path_prefixes":["/s ys"]}`, `"/s ys" must start`},
		{"prefix with NUL", `{"path_prefixes":["/sys\u0000"]}`, `"/sys\x00" must start`},
		{"prefix not ASCII", `{"path_prefixes":["/sÿs"]}`, `key "path_prefixes"`},
		{"port wrong type", `{"default_port":"80"}`, `key "default_port" must be an integer`},
		{"port fraction", `{"default_port":80.5}`, `key "default_port" must be an integer`},
		{"port exponent", `{"default_port":8e1}`, `key "default_port" must be an integer`},
		{"port zero", `{"default_port":0}`, `key "default_port": 0 is not a port`},
		{"port too big", `{"default_port":65536}`, `key "default_port": 65536 is not a port`},
		{"strip wrong type", `{"strip_header":"yes"}`, `key "strip_header" must be true or false`},
		{"registrar wrong type", `{"registrar":"registrar"}`, `key "registrar" must be an object`},
		{"cluster wrong type", `{"registrar":{"cluster":null}}`, `key "registrar.cluster" must be a string`},
		{"cluster empty", `{"registrar":{"cluster":""}}`, `key "registrar.cluster"`},
		{"authority empty", `{"registrar":{"authority":""}}`, `key "registrar.authority"`},
		{"path relative", `{"registrar":{"path":"v1/routes"}}`, `key "registrar.path"`},
		{"path with query", `{"registrar":{"path":"/v1/routes?x=1"}}`, `key "registrar.path"`},
		{"wait wrong type", `{"registrar":{"wait_seconds":true}}`, `key "registrar.wait_seconds" must be an integer`},
		{"wait zero", `{"registrar":{"wait_seconds":0}}`, `key "registrar.wait_seconds": 0 is out of range`},
		{"stale after negative", `{"stale_after_seconds":-1}`, `key "stale_after_seconds": -1 is out of range`},
		{"stale after too long", `{"stale_after_seconds":86401}`, `key "stale_after_seconds": 86401 is out of range`},
		{"stale after wrong type", `{"stale_after_seconds":"60"}`, `key "stale_after_seconds" must be an integer`},
		{"max fails negative", `{"max_fails":-1}`, `key "max_fails": -1 is out of range; use 1 to 1000`},
		{"max fails too many", `{"max_fails":1001}`, `key "max_fails": 1001 is out of range`},
		{"max fails wrong type", `{"max_fails":"3"}`, `key "max_fails" must be an integer`},
		{"max fails fraction", `{"max_fails":1.5}`, `key "max_fails" must be an integer`},
		{"fail timeout zero", `{"fail_timeout":0}`, `key "fail_timeout": 0 is out of range; use 1 to 3600 seconds`},
		{"fail timeout too long", `{"fail_timeout":3601}`, `key "fail_timeout": 3601 is out of range`},
		{"fail timeout nginx string", `{"fail_timeout":"10s"}`, `key "fail_timeout" must be a whole number of seconds, e.g. 10`},
		{"wait too long", `{"registrar":{"wait_seconds":601}}`, `key "registrar.wait_seconds": 601 is out of range`},
		{"token wrong type", `{"registrar":{"token":42}}`, `key "registrar.token" must be a string`},
		{"token with newline", `{"registrar":{"token":"a\nb"}}`, `key "registrar.token" must not contain line breaks`},
		{"token_env not a name", `{"registrar":{"token_env":"9TOKEN"}}`, `key "registrar.token_env": "9TOKEN" is not an environment variable name`},
		{"token_env with a space", `{"registrar":{"token_env":"A B"}}`, `key "registrar.token_env": "A B" is not an environment variable name`},
		{"token and token_env", `{"registrar":{"token":"t","token_env":"T"}}`, `keys "registrar.token" and "registrar.token_env" both give the token`},
		{"authority with tab", `{"registrar":{"authority":"reg\tx"}}`, `key "registrar.authority" must not contain line breaks, tabs`},
		{"cluster with DEL", `{"registrar":{"cluster":"reg\u007f"}}`, `key "registrar.cluster" must not contain`},
		{"path with tab", `{"registrar":{"path":"/v1/routes\t"}}`, `key "registrar.path" must not contain line breaks, tabs`},
		{"proxy id wrong type", `{"proxy_id":7}`, `key "proxy_id" must be a string`},
		{"proxy id with space", `{"proxy_id":"edge 1"}`, `key "proxy_id": "edge 1" must be at most 200 characters of visible ASCII`},
		{"proxy id with newline", `{"proxy_id":"edge\n1"}`, `key "proxy_id"`},
		{"proxy id not ASCII", `{"proxy_id":"edge\u202e1"}`, `key "proxy_id"`},
		{"proxy id too long", `{"proxy_id":"` + strings.Repeat("p", 201) + `"}`, `key "proxy_id"`},
		{"path with space", `{"registrar":{"path":"/v1/my routes"}}`, `key "registrar.path": "/v1/my routes" must start`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.json))
			if err == nil {
				t.Fatalf("Parse(%s) accepted it, want an error containing %q", tt.json, tt.wantInErr)
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantInErr)
			}
		})
	}
}

func TestMatchesPrefix(t *testing.T) {
	sys := []string{"/sys"}
	tests := []struct {
		path     string
		prefixes []string
		want     bool
	}{
		{"/sys", sys, true},
		{"/sys/", sys, true},
		{"/sys/x", sys, true},
		{"/sys/logs/app.log", sys, true},
		{"/sys?x=1", sys, true},
		{"/system", sys, false},
		{"/sy", sys, false},
		{"/", sys, false},
		{"/api/sys", sys, false},
		{"/SYS", sys, false},
		{"/logs/v2/a", []string{"/sys", "/logs/v2"}, true},
		{"/logs/v3", []string{"/sys", "/logs/v2"}, false},
		{"/anything", []string{"/"}, true},
	}
	for _, tt := range tests {
		if got := MatchesPrefix(tt.path, tt.prefixes); got != tt.want {
			t.Errorf("MatchesPrefix(%q, %q) = %v, want %v", tt.path, tt.prefixes, got, tt.want)
		}
	}
}

func TestStaleAfter(t *testing.T) {
	for _, tc := range []struct {
		json string
		want int
	}{
		{`{}`, 3 * (30 + 10)},
		{`{"registrar":{"wait_seconds":1}}`, 33},
		{`{"stale_after_seconds":45,"registrar":{"wait_seconds":1}}`, 45},
	} {
		c, err := Parse([]byte(tc.json))
		if err != nil {
			t.Fatalf("%s: %v", tc.json, err)
		}
		if got := c.StaleAfter(); got != tc.want {
			t.Errorf("%s: StaleAfter() = %d, want %d", tc.json, got, tc.want)
		}
	}
}
