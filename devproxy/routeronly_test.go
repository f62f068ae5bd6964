package devproxy

import (
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testkit/bin"
	"switchyard/internal/testkit/logbuf"
	"switchyard/internal/testkit/wait"
)

// TestRouterOnlyWithoutBootstrapService: envoy.yaml without its envoy.bootstrap.wasm
// service (what Istio and Envoy Gateway can deploy: the HTTP filter only) runs the
// router VMs alone; one of them takes the poll lease and keeps the table, so requests
// route, and a later registration reaches every worker.
func TestRouterOnlyWithoutBootstrapService(t *testing.T) {
	target, other := newRecorder(t, "target"), newRecorder(t, "other")
	reg := startRegistrar(t)
	register(t, reg.URL(), "web-1", target.addr)
	bs := repoEnvoy(t)
	if len(bs.GetBootstrapExtensions()) == 0 {
		t.Fatal("envoy.yaml has no bootstrap extension to leave out; update the test")
	}
	bs.BootstrapExtensions = nil
	logs := &logbuf.Buffer{}
	p, err := New(t.Context(), Config{
		Wasm:          bin.Read(t, "filter.wasm"),
		Envoy:         bs,
		Registrar:     []string{reg.URL()},
		Clusters:      map[string][]string{"app": {"http://" + other.addr}, "frontend": {"http://" + other.addr}},
		AllowCIDR:     []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Workers:       3,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		HostLogOutput: logs,
	})
	if err != nil {
		t.Fatalf("New on envoy.yaml without the bootstrap service: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	if p.sync != nil {
		t.Fatal("a sync VM runs without the bootstrap service")
	}
	w := &world{p: p, proxy: httptest.NewServer(p)}
	t.Cleanup(w.proxy.Close)
	wait.Eventually(t, 10*time.Second, func() string {
		if a := w.do(t, "GET", "/sys/ready", "X-Server-Name", "web-1"); a.status != 200 || !strings.HasPrefix(a.body, "target GET /sys/ready") {
			return fmt.Sprintf("web-1 not routed: %d %s", a.status, a.body)
		}
		return ""
	})
	register(t, reg.URL(), "web-2", other.addr)
	// Every worker (requests are spread over the router VMs) routes the new name.
	wait.Eventually(t, 10*time.Second, func() string {
		for i := 0; i < 12; i++ {
			if a := w.do(t, "GET", "/sys/x", "X-Server-Name", "web-2"); a.status != 200 || !strings.HasPrefix(a.body, "other GET /sys/x") {
				return fmt.Sprintf("web-2 not routed: %d %s", a.status, a.body)
			}
		}
		return ""
	})
	if n := strings.Count(logs.String(), "holds the poll lease"); n != 1 {
		t.Fatalf("%d router VMs took the poll lease, want 1\n%s", n, logs.String())
	}
}
