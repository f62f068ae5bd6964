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
