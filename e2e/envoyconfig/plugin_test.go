package envoyconfig

import (
	"strings"
	"testing"
)

func TestParsePluginConfig(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		wantErr string // "" when it must be accepted
	}{
		{name: "the design's configuration", json: designJSON},
		{name: "keys left out", json: `{"header":"x-server-name"}`},
		{name: "empty object", json: `{}`},
		{name: "unknown top-level key", json: `{"watch_path":"/x"}`, wantErr: "unknown key(s) watch_path"},
		{name: "key in another case", json: `{"Header":"x"}`, wantErr: "unknown key(s) Header"},
		{name: "unknown registrar key", json: `{"registrar":{"call_timeout_ms":40000}}`, wantErr: "registrar.call_timeout_ms"},
		{name: "registrar not an object", json: `{"registrar":"registrar"}`, wantErr: "registrar is not a JSON object"},
		{name: "not an object", json: `["header"]`, wantErr: "not a JSON object"},
		{name: "trailing data", json: `{} {}`, wantErr: "after the JSON object"},
		{name: "wrong value type", json: `{"default_port":"80"}`, wantErr: "default_port"},
		{name: "empty header", json: `{"header":""}`, wantErr: "header must name"},
		{name: "no prefixes", json: `{"path_prefixes":[]}`, wantErr: "at least one prefix"},
		{name: "prefix without slash", json: `{"path_prefixes":["sys"]}`, wantErr: "must start with /"},
		{name: "prefix with trailing slash", json: `{"path_prefixes":["/sys/"]}`, wantErr: "not end with /"},
		{name: "port out of range", json: `{"default_port":65536}`, wantErr: "not a port"},
		{name: "port zero", json: `{"default_port":0}`, wantErr: "not a port"},
		{name: "wait zero", json: `{"registrar":{"wait_seconds":0}}`, wantErr: "wait_seconds 0 is out of range"},
		{name: "wait too long", json: `{"registrar":{"wait_seconds":601}}`, wantErr: "out of range"},
		{name: "empty registrar cluster", json: `{"registrar":{"cluster":""}}`, wantErr: "registrar.cluster"},
		{name: "relative registrar path", json: `{"registrar":{"path":"v1/routes"}}`, wantErr: "registrar.path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePluginConfig([]byte(tc.json))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("rejected: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("accepted, want an error mentioning %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
}

// A BytesValue reaches the plugin unwrapped too; the bytes must come back as written.
func TestPluginConfigurationsFromBytesValue(t *testing.T) {
	// "e30=" is base64 for "{}".
	bs := loadText(t, configText(t, routerConfig,
		`configuration: {"@type": type.googleapis.com/google.protobuf.BytesValue, value: "e30="}`))
	sync, router, err := PluginConfigurations(bs)
	if err != nil {
		t.Fatal(err)
	}
	if string(router) != "{}" {
		t.Errorf("router configuration = %q, want {}", router)
	}
	if !strings.Contains(string(sync), `"x-server-name"`) {
		t.Errorf("sync configuration = %q, want the file's JSON", sync)
	}
}
