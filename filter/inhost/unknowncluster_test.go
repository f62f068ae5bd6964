package inhost

import (
	"strings"
	"testing"
	"time"

	"switchyard/internal/contract"
	"switchyard/wasmhost"
)

// A poll to a cluster the proxy does not have (Envoy refuses the http call at once,
// BadArgument) is logged by the real module naming that cluster and the names the
// platforms give the registrar's cluster: under Envoy Gateway with mergeBackends the
// route-rule name the manifest uses is not there.
func TestPollToUnknownClusterNamesIt(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, map[string]string{"web-1": "10.0.0.1:81"})
	const cluster = "httproute/switchyard/registrar/rule/0"
	e.vmWith(wasmhost.PluginConfig{Name: "switchyard", RootID: contract.RootRouter, VMID: "switchyard",
		Configuration: []byte(`{"registrar": {"cluster": "` + cluster + `", "wait_seconds": 1}}`)})
	l := e.waitLog("refused the poll to cluster '"+cluster+"'", 10*time.Second)
	if want := "service/<namespace>/<service>/<port>/http with EnvoyProxy mergeBackends"; !strings.Contains(l.Message, want) {
		t.Errorf("the log line %q does not say %q", l.Message, want)
	}
}
