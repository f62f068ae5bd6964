package server

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

func TestMetricsEndpoint(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	register(t, reg.URL, "web-1", "10.1.2.3:8080", "logs")
	call(t, "GET", reg.URL+"/api/servers/register", "")
	call(t, "GET", reg.URL+"/v1/routes?after=0", "")
	call(t, "GET", reg.URL+"/no/such/page", "")
	body := string(call(t, "GET", reg.URL+"/metrics", "").Body)
	for _, want := range []string{
		`registrar_http_requests_total{code="200",route="/api/servers/register"} 1`,
		`registrar_http_requests_total{code="405",route="/api/servers/register"} 1`,
		`registrar_http_requests_total{code="200",route="/v1/routes"} 1`,
		`registrar_http_requests_total{code="404",route="/"} 1`,
		"registrar_servers 1",
		"registrar_revision 1",
		"registrar_long_poll_watchers 0",
		"registrar_store_commits_total 1",
		"registrar_store_commit_seconds_count 1",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// dtoCounter reads the commits counter.
type dtoCounter struct{}

func (c dtoCounter) read(t *testing.T, reg *testRegistrar) float64 { return c.readB(t, reg) }

func (dtoCounter) readB(t testing.TB, reg *testRegistrar) float64 {
	t.Helper()
	var m dto.Metric
	if err := reg.Metrics.commits.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestMetricsProxies(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	rev := put(t, reg, "web-1", "10.0.0.1")
	lin := reg.Store.Lineage()
	pollAs(t, reg, "edge-a", rev, lin)
	pollAs(t, reg, "edge-b", rev, lin)
	put(t, reg, "web-2", "10.0.0.2")
	rev3 := put(t, reg, "web-3", "10.0.0.3")
	pollAs(t, reg, "edge-a", rev3, lin)
	pollAs(t, reg, "", rev3, lin) // unnamed: listed as unnamed@127.0.0.1, and counted
	body := string(call(t, "GET", reg.URL+"/metrics", "").Body)
	for _, want := range []string{
		`registrar_proxies{state="current"} 2`,
		`registrar_proxies{state="behind"} 1`,
		`registrar_proxies{state="gone"} 0`,
		"registrar_proxy_lag_revisions_max 2",
		"registrar_proxy_lag_seconds_max ",
		"registrar_proxies_evicted_total 0",
		"registrar_proxy_identities_escaped_total 0",
		"registrar_proxy_polls_unnamed_total 1",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "edge-a") || strings.Contains(body, "unnamed@127") {
		t.Error("/metrics names a proxy: ids are unbounded and never become labels")
	}
}
