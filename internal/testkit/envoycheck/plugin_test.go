package envoycheck

import (
	"strings"
	"testing"

	"switchyard/internal/envoyconfig"
)

// A BytesValue reaches the plugin unwrapped too; the bytes must come back as written.
func TestPluginConfigurationsFromBytesValue(t *testing.T) {
	// "e30=" is base64 for "{}".
	bs := loadText(t, RepoConfigText(t, routerConfig,
		`configuration: {"@type": type.googleapis.com/google.protobuf.BytesValue, value: "e30="}`))
	sync, router, err := envoyconfig.PluginConfigurations(bs)
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
