package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A server's health check goes through the log and a compaction unchanged, and a
// write of the same check changes nothing; a data file holding a check no write could
// make is refused at start, naming the field.
func TestHealthCheckStored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "servers.json")
	s := openT(t, path, EmbeddedOptions{CompactAt: 1})
	hc := HealthCheck{Path: "/healthz?deep=1", Interval: Duration(5 * time.Second), Timeout: Duration(250 * time.Millisecond), HealthyThreshold: 3, UnhealthyThreshold: 1}
	ts := weighted()
	ts[1].Down = true
	sv := NewServer("web", "shop", ts)
	sv.HealthCheck = &hc
	out := s.Write(Change{Name: "web", Server: &sv})
	if out.Err != nil || !out.Changed {
		t.Fatalf("write: %+v", out)
	}
	same := sv
	same.HealthCheck = &HealthCheck{}
	*same.HealthCheck = hc
	if out := s.Write(Change{Name: "web", Server: &same}); out.Err != nil || out.Changed {
		t.Fatalf("the same check again: %+v, want unchanged", out)
	}
	other := sv
	other.HealthCheck = &HealthCheck{Path: "/other", Interval: hc.Interval, Timeout: hc.Timeout, HealthyThreshold: 3, UnhealthyThreshold: 1}
	if out := s.Write(Change{Name: "web", Server: &other}); out.Err != nil || !out.Changed {
		t.Fatalf("another path: %+v, want a change", out)
	}
	if out := s.Write(Change{Name: "web", Server: &sv}); out.Err != nil || !out.Changed {
		t.Fatalf("back: %+v", out)
	}
	s.Close()
	s = openT(t, path, EmbeddedOptions{})
	got, _ := s.Current().Get("web")
	if got.HealthCheck == nil || *got.HealthCheck != hc || !got.Targets[1].Down || got.Route() != "*10.0.0.1:8080/90,10.0.0.2:8080/10/x,green.internal/1/d" {
		t.Fatalf("reloaded %+v (check %+v, route %q)", got, got.HealthCheck, got.Route())
	}
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"healthCheck":{"path":"/healthz?deep=1","interval":"5s","timeout":"250ms","healthyThreshold":3,"unhealthyThreshold":1}`) {
		t.Fatalf("the data file does not hold the check as JSON with duration strings:\n%s", b)
	}

	for _, tc := range []struct{ hc, want string }{
		{`{"path":"healthz","interval":"5s","timeout":"1s","healthyThreshold":1,"unhealthyThreshold":1}`, "healthCheck.path"},
		{`{"path":"/h","interval":"0s","timeout":"1s","healthyThreshold":1,"unhealthyThreshold":1}`, "healthCheck.interval"},
		{`{"path":"/h","interval":"5s","timeout":"6s","healthyThreshold":1,"unhealthyThreshold":1}`, "healthCheck.timeout"},
		{`{"path":"/h","interval":"5s","timeout":"1s","healthyThreshold":0,"unhealthyThreshold":1}`, "healthCheck.healthyThreshold"},
		{`{"path":"/h","interval":5,"timeout":"1s","healthyThreshold":1,"unhealthyThreshold":1}`, "duration is a string"},
	} {
		bad := filepath.Join(t.TempDir(), "servers.json")
		data := `{"revision": 1, "lineage": "0123456789abcdef0123456789abcdef", "servers": [
{"host":"web","ipAddress":"10.1.2.3:8080","serviceName":"shop","healthCheck":` + tc.hc + `,"updatedAt":"2026-11-01T10:00:00Z"}
]}
`
		if err := os.WriteFile(bad, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(bad, EmbeddedOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("data with healthCheck %s: %v, want an error naming %s", tc.hc, err, tc.want)
		}
	}
}
