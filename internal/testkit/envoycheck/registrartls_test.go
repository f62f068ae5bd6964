package envoycheck

import (
	"regexp"
	"strings"
	"testing"
)

// The registrar cluster's commented transport_socket (for a registrar serving HTTPS)
// loads as Envoy's UpstreamTlsContext when uncommented, and the checks still pass.
func TestRegistrarTLSExampleLoads(t *testing.T) {
	text := RepoConfigText(t)
	start := strings.Index(text, "    # transport_socket:\n")
	if start < 0 {
		t.Fatal("envoy.yaml shows no commented transport_socket on the registrar cluster")
	}
	end := strings.Index(text[start:], "    load_assignment:")
	block := text[start : start+end]
	uncommented := regexp.MustCompile(`(?m)^    # `).ReplaceAllString(block, "    ")
	bs := RepoConfig(t, block, uncommented)
	for _, c := range bs.GetStaticResources().GetClusters() {
		if c.GetName() != "registrar" {
			continue
		}
		ts := c.GetTransportSocket()
		if ts.GetName() != "envoy.transport_sockets.tls" || !strings.HasSuffix(ts.GetTypedConfig().GetTypeUrl(), "UpstreamTlsContext") {
			t.Fatalf("uncommented, the registrar cluster's transport_socket is %v", ts)
		}
		return
	}
	t.Fatal("no registrar cluster")
}
