package registrarapi

import (
	"encoding/json"
	"testing"
	"time"
)

// The JSON names are the API's contract: the registrar encodes this type and its
// tests decode it, so a renamed tag would pass them all. This test spells every name
// out once, as README and docs/origin.md do.
func TestWireNames(t *testing.T) {
	rev, yes, by := uint64(7), true, 2
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sv := Server{Name: "web-1", Target: "10.0.0.1:80", Service: "shop", UpdatedAt: at,
		Targets:     []Target{{Address: "10.0.0.1:80", Weight: 90, State: "active", Health: "up"}},
		HealthCheck: &HealthCheck{Path: "/healthz", Interval: "5s", Timeout: "2s", HealthyThreshold: 2, UnhealthyThreshold: 3}}
	pv := ProxyView{Proxy: "edge-a", Cluster: "c", Version: "v1", State: "current", Revision: 7, Lineage: "L",
		RevisionsBehind: 1, BehindSeconds: 2, LastPoll: at, SilentSeconds: 3, WaitSeconds: 4, FirstSeen: at, Replica: "r"}
	b, err := json.Marshal(Answer{Result{Success: true, Error: "e", Revision: &rev, Changed: &yes, Server: &sv,
		Servers: &[]Server{sv}, Lineage: "L", Replica: "r", Summary: &ProxySummary{1, 2, 3, 4},
		Proxies: &[]ProxyView{pv}, Applied: &yes, AppliedBy: &by, Pending: &[]ProxyView{}, PendingCount: &by, Imported: &by}})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"result":{"success":true,"error":"e","revision":7,"changed":true,` +
		`"server":{"host":"web-1","ipAddress":"10.0.0.1:80","serviceName":"shop","updatedAt":"2026-01-02T03:04:05Z",` +
		`"targets":[{"address":"10.0.0.1:80","weight":90,"state":"active","health":"up"}],` +
		`"healthCheck":{"path":"/healthz","interval":"5s","timeout":"2s","healthyThreshold":2,"unhealthyThreshold":3}},` +
		`"servers":[{"host":"web-1","ipAddress":"10.0.0.1:80","serviceName":"shop","updatedAt":"2026-01-02T03:04:05Z",` +
		`"targets":[{"address":"10.0.0.1:80","weight":90,"state":"active","health":"up"}],` +
		`"healthCheck":{"path":"/healthz","interval":"5s","timeout":"2s","healthyThreshold":2,"unhealthyThreshold":3}}],` +
		`"lineage":"L","replica":"r","summary":{"proxies":1,"current":2,"behind":3,"gone":4},` +
		`"proxies":[{"proxy":"edge-a","cluster":"c","version":"v1","state":"current","revision":7,"lineage":"L",` +
		`"revisionsBehind":1,"behindSeconds":2,"lastPoll":"2026-01-02T03:04:05Z","silentSeconds":3,"waitSeconds":4,` +
		`"firstSeen":"2026-01-02T03:04:05Z","replica":"r"}],"applied":true,"appliedBy":2,"pending":[],"pendingCount":2,"imported":2}}`
	if string(b) != want {
		t.Errorf("encoded\n%s\nwant\n%s", b, want)
	}

	plain := sv
	plain.Targets, plain.HealthCheck = nil, nil
	b, _ = json.Marshal(Export{Revision: 7, Lineage: "L", Servers: []Server{plain}})
	if want := `{"revision":7,"lineage":"L","servers":[{"host":"web-1","ipAddress":"10.0.0.1:80","serviceName":"shop","updatedAt":"2026-01-02T03:04:05Z"}]}`; string(b) != want {
		t.Errorf("encoded %s, want %s", b, want)
	}

	// A failure carries only success and error; an empty list is still present.
	b, _ = json.Marshal(Answer{Result{Error: "no such server", Servers: &[]Server{}}})
	if want := `{"result":{"success":false,"error":"no such server","servers":[]}}`; string(b) != want {
		t.Errorf("encoded %s, want %s", b, want)
	}
}
