package devproxy

import (
	"context"
	"strings"
	"testing"
)

// The dev proxy reads the plugin configuration with the filter's own parser, so a
// configuration the filter would refuse stops it before any VM starts, naming the key.
func TestNewRefusesConfigurationTheFilterRefuses(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"headers":"x"}`, `unknown key "headers"`},
		{`{"path_prefixes":["/sys/"]}`, `key "path_prefixes"`},
		{`{"registrar":{"wait_seconds":0}}`, `key "registrar.wait_seconds"`},
	} {
		_, err := New(context.Background(), Config{
			Wasm: []byte("not reached"), RegistrarURL: "http://127.0.0.1:1", PluginConfig: []byte(tc.json),
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New with %s: err = %v, want one naming %s", tc.json, err, tc.want)
		}
	}
}
