package inhost

import (
	"path/filepath"
	"testing"
	"time"

	"switchyard/internal/contract"
	"switchyard/internal/envoyconfig"
	"switchyard/internal/testkit/bin"
	"switchyard/wasmhost"
)

// The plugin configuration that envoy.yaml gives each root is accepted by the real
// filter's on_configure and routes: the offline schema check cannot see this.
func TestEnvoyYAMLPluginConfigurationRunsInTheFilter(t *testing.T) {
	root, err := bin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bs, err := envoyconfig.Load(filepath.Join(root, "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	syncCfg, routerCfg, err := envoyconfig.PluginConfigurations(bs)
	if err != nil {
		t.Fatal(err)
	}
	e := newFEnv(t, wasmhost.Options{}, map[string]string{"web-1": "10.1.2.3:8080", "web-2": "logs.internal"})
	e.vm(contract.RootSync, syncCfg)
	router := e.vm(contract.RootRouter, routerCfg)
	waitRouted(t, router, "web-1", "10.1.2.3:8080", 5*time.Second)
	// envoy.yaml keeps the default port 80 for targets registered without one.
	waitRouted(t, router, "web-2", "logs.internal:80", 5*time.Second)
	if got := fRequest(t, router, "/sys/x", "nobody"); got.status() != 404 {
		t.Errorf("unknown name with envoy.yaml's configuration: %d, want 404", got.status())
	}
}
