package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/internal/registrarapi"
	"switchyard/internal/testkit/apitest"
	"switchyard/registrar/store"
)

// healthOf is the health the API shows for each target of name, in order.
func healthOf(t *testing.T, reg *testRegistrar, name string) string {
	t.Helper()
	s := send(t, "GET", reg.URL+"/api/servers/"+name, "", 200).Result.Server
	var hs []string
	for _, tv := range s.Targets {
		hs = append(hs, tv.Health)
	}
	return strings.Join(hs, ",")
}

// metricValue reads one sample of /metrics ("name" or `name{label="v"}`); 0 when absent.
func metricValue(t *testing.T, reg *testRegistrar, sample string) float64 {
	t.Helper()
	for _, line := range strings.Split(string(call(t, "GET", reg.URL+"/metrics", "").Body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

func checkedServer(name string, hc string, addrs ...string) string {
	var ts []string
	for _, a := range addrs {
		ts = append(ts, fmt.Sprintf(`{"address": %q}`, a))
	}
	return fmt.Sprintf(`{"host": %q, "serviceName": "shop", "targets": [%s], "healthCheck": %s}`, name, strings.Join(ts, ", "), hc)
}

// fastCheck checks every 300 ms: fast for a test, with room for a loaded machine to
// answer a healthy target in time.
const fastCheck = `{"path": "/healthz", "interval": "300ms", "timeout": "300ms", "unhealthyThreshold": 2, "healthyThreshold": 2}`

// A target whose health path starts failing is written down (a new revision; the v3
// answer flags it x, v1 skips it, the API shows it down) and up again once it passes
// healthyThreshold checks; the other target is untouched. A write without the health
// check makes every target up.
func TestHealthCheckDownAndUp(t *testing.T) {
	reg := startRegistrar(t, regOptions{allow: "127.0.0.0/8"})
	a, b := apitest.NewHealthTarget(t, "127.0.0.1"), apitest.NewHealthTarget(t, "127.0.0.1")
	res := send(t, "POST", reg.URL+"/api/servers/register", checkedServer("web", fastCheck, a.Addr, b.Addr), 200).Result
	want := registrarapi.HealthCheck{Path: "/healthz", Interval: "300ms", Timeout: "300ms", HealthyThreshold: 2, UnhealthyThreshold: 2}
	if hc := res.Server.HealthCheck; hc == nil || *hc != want {
		t.Fatalf("register answer's healthCheck %+v, want %+v", hc, want)
	}
	waitFor(t, "both targets checked twice", func() bool { return a.Hits() >= 2 && b.Hits() >= 2 })
	for ua := range a.ByAgent() {
		if !strings.HasPrefix(ua, "switchyard-registrar (health check; replica ") {
			t.Errorf("a check's User-Agent %q does not say what it is", ua)
		}
	}
	if h := healthOf(t, reg, "web"); h != "up,up" {
		t.Fatalf("both targets pass: health %s, want up,up", h)
	}
	rev := reg.Store.Current().Revision()

	a.Status.Store(500)
	failedAt := time.Now()
	waitFor(t, "the failing target shown down", func() bool { return healthOf(t, reg, "web") == "down,up" })
	t.Logf("marked down %v after its health path began failing (2 failed checks at 300 ms)", time.Since(failedAt).Round(time.Millisecond))
	if got := reg.Store.Current().Revision(); got != rev+1 {
		t.Errorf("revision %d after the target went down, want %d (one write)", got, rev+1)
	}
	if got := routeIn(t, reg, 3, "web"); got != fmt.Sprintf("*%s/1/x,%s/1", a.Addr, b.Addr) {
		t.Errorf("v3: web → %q, want the first target flagged x", got)
	}
	if got := routeIn(t, reg, 1, "web"); got != b.Addr {
		t.Errorf("v1: web → %q, want the target that is up (%s)", got, b.Addr)
	}
	if v := metricValue(t, reg, "registrar_health_targets_down"); v != 1 {
		t.Errorf("registrar_health_targets_down %v, want 1", v)
	}
	if v := metricValue(t, reg, `registrar_health_check_failures_total{reason="status"}`); v < 2 {
		t.Errorf(`registrar_health_check_failures_total{reason="status"} %v, want at least 2`, v)
	}
	if v := metricValue(t, reg, "registrar_health_checking"); v != 1 {
		t.Errorf("registrar_health_checking %v, want 1 (the embedded store's registrar checks)", v)
	}
	// Still failing: no more writes.
	time.Sleep(700 * time.Millisecond)
	if got := reg.Store.Current().Revision(); got != rev+1 {
		t.Errorf("revision %d while the target stays down, want %d (no write per check)", got, rev+1)
	}

	a.Status.Store(204)
	waitFor(t, "the target shown up again", func() bool { return healthOf(t, reg, "web") == "up,up" })
	if got := routeIn(t, reg, 3, "web"); got != fmt.Sprintf("*%s/1,%s/1", a.Addr, b.Addr) {
		t.Errorf("v3 after recovery: web → %q", got)
	}
	if v := metricValue(t, reg, "registrar_health_targets_down"); v != 0 {
		t.Errorf("registrar_health_targets_down %v after recovery, want 0", v)
	}

	// Down again, then a PUT without healthCheck: nothing checks any more, so every
	// target is up and the checks stop.
	a.Status.Store(503)
	waitFor(t, "down again", func() bool { return healthOf(t, reg, "web") == "down,up" })
	s := send(t, "PUT", reg.URL+"/api/servers/web", fmt.Sprintf(`{"serviceName": "shop", "targets": [{"address": %q}, {"address": %q}]}`, a.Addr, b.Addr), 200).Result.Server
	if s.HealthCheck != nil || s.Targets[0].Health != healthUp {
		t.Fatalf("PUT without healthCheck: %+v, want no health check and every target up", s)
	}
	time.Sleep(400 * time.Millisecond) // a check in flight ends
	n := a.Hits()
	time.Sleep(800 * time.Millisecond)
	if got := a.Hits(); got != n {
		t.Errorf("%d checks after the health check was removed", got-n)
	}
}

// A redirect fails the check and is never followed; an address the target policy
// refuses (here one stored before -allow-cidr narrowed, written to the store
// directly) is never connected to, and fails its check.
func TestHealthCheckNoRedirectNoRefusedAddress(t *testing.T) {
	reg := startRegistrar(t, regOptions{allow: "127.0.0.1/32"})
	redir := apitest.NewHealthTarget(t, "127.0.0.1")
	redir.Status.Store(302)
	refused := apitest.NewHealthTarget(t, "127.0.0.2") // 127.0.0.0/8 is loopback; 127.0.0.2 is outside 127.0.0.1/32
	send(t, "POST", reg.URL+"/api/servers/register", checkedServer("moved", fastCheck, redir.Addr), 200)

	if r := call(t, "POST", reg.URL+"/api/servers/register", checkedServer("hidden", fastCheck, refused.Addr)); r.Code != 400 {
		t.Fatalf("registering a refused address: %d %s, want 400", r.Code, r.Body)
	}
	hc := store.HealthCheck{Path: "/healthz", Interval: store.Duration(100 * time.Millisecond), Timeout: store.Duration(100 * time.Millisecond), HealthyThreshold: 2, UnhealthyThreshold: 2}
	sv := store.NewServer("hidden", "shop", []store.Target{{Address: refused.Addr, Weight: 1, State: store.StateActive}})
	sv.HealthCheck = &hc
	if out := reg.Store.Write(store.Change{Name: "hidden", Server: &sv}); out.Err != nil {
		t.Fatal(out.Err)
	}

	waitFor(t, "the redirecting target shown down", func() bool { return healthOf(t, reg, "moved") == "down" })
	waitFor(t, "the refused target shown down", func() bool { return healthOf(t, reg, "hidden") == "down" })
	if n := redir.Others.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
	if n := refused.Hits() + refused.Others.Load(); n != 0 {
		t.Errorf("the refused address was connected to %d times", n)
	}
	if v := metricValue(t, reg, `registrar_health_check_failures_total{reason="refused"}`); v < 2 {
		t.Errorf(`failures{reason="refused"} %v, want at least 2`, v)
	}
	// What the API shows names the server, never the refused address beyond the
	// target it was registered with.
	body := string(call(t, "GET", reg.URL+"/api/servers/hidden", "").Body)
	if strings.Count(body, refused.Addr) != 2 { // ipAddress and targets[0].Address
		t.Errorf("GET shows the address other than as the registered target: %s", body)
	}
}

// Bad health-check settings are refused with a 400 naming the field, and nothing is
// stored.
func TestHealthCheckBadInput(t *testing.T) {
	reg := startRegistrar(t, regOptions{allow: "127.0.0.0/8"})
	rev := reg.Store.Current().Revision()
	for _, tc := range []struct{ hc, want string }{
		{`{"path": "healthz"}`, `healthCheck.path: "healthz" must start with /`},
		{`{}`, "healthCheck.path: missing"},
		{`{"path": "/a b"}`, "healthCheck.path: byte 2"},
		{`{"path": "/x#y"}`, "healthCheck.path: byte 2"},
		{`{"path": "/` + strings.Repeat("a", 300) + `"}`, "healthCheck.path: 301 bytes"},
		{`{"path": "/h", "interval": "0s"}`, "healthCheck.interval: 0s is not from 100ms to 1h0m0s"},
		{`{"path": "/h", "interval": "0"}`, "healthCheck.interval: 0s is not"},
		{`{"path": "/h", "interval": "fast"}`, `healthCheck.interval: "fast" is not a duration`},
		{`{"path": "/h", "interval": 5}`, `healthCheck: field "interval" must be a JSON string`},
		{`{"path": "/h", "interval": "1s", "timeout": "2s"}`, "healthCheck.timeout: 2s is not from 10ms to the interval (1s)"},
		{`{"path": "/h", "timeout": "1ms"}`, "healthCheck.timeout: 1ms is not from 10ms"},
		{`{"path": "/h", "healthyThreshold": 0}`, "healthCheck.healthyThreshold: 0 is not from 1 to 100"},
		{`{"path": "/h", "unhealthyThreshold": 101}`, "healthCheck.unhealthyThreshold: 101 is not from 1 to 100"},
		{`{"path": "/h", "unhealthyThreshold": "3"}`, `healthCheck.unhealthyThreshold: must be a whole number from 1 to 100 (got "3")`},
		{`{"path": "/h", "unhealthyThreshold": 1.5}`, `healthCheck.unhealthyThreshold: must be a whole number`},
		{`{"path": "/h", "retries": 3}`, `healthCheck: field "retries" is not known`},
		{`{"path": "/h", "path": "/i"}`, `healthCheck: field "path" appears more than once`},
		{`"/healthz"`, "healthCheck: must be a JSON object"},
	} {
		r := call(t, "POST", reg.URL+"/api/servers/register", checkedServer("web", tc.hc, "127.0.0.1:9"))
		res := r.Result(t)
		if r.Code != 400 || res.Success || !strings.Contains(res.Error, tc.want) {
			t.Errorf("healthCheck %.60s: %d %q, want 400 with %q", tc.hc, r.Code, res.Error, tc.want)
		}
	}
	if got := reg.Store.Current().Revision(); got != rev {
		t.Errorf("revision %d after refused writes, want %d", got, rev)
	}
	// Defaults: only the path given; a short interval bounds the default timeout.
	s := send(t, "POST", reg.URL+"/api/servers/register", checkedServer("web", `{"path": "/h?full=1"}`, "127.0.0.1:9"), 200).Result.Server
	if want := (registrarapi.HealthCheck{Path: "/h?full=1", Interval: "5s", Timeout: "2s", HealthyThreshold: 2, UnhealthyThreshold: 2}); s.HealthCheck == nil || *s.HealthCheck != want {
		t.Errorf("defaults: %+v, want %+v", s.HealthCheck, want)
	}
	s = send(t, "PUT", reg.URL+"/api/servers/web", checkedServer("web", `{"path": "/h", "interval": "500ms"}`, "127.0.0.1:9"), 200).Result.Server
	if s.HealthCheck == nil || s.HealthCheck.Timeout != "500ms" {
		t.Errorf("interval 500ms alone: %+v, want the timeout 500ms", s.HealthCheck)
	}
	body := string(call(t, "GET", reg.URL+"/api/servers/web", "").Body)
	if !strings.Contains(body, `"healthCheck":{"path":"/h","interval":"500ms","timeout":"500ms","healthyThreshold":2,"unhealthyThreshold":2}`) {
		t.Errorf("GET does not show the health check as written: %s", body)
	}
}

// However many targets are checked, at most checkWorkers checks run at once: 40
// targets whose health path takes 200 ms each, checked every 300 ms, see at most 16
// requests in flight together, and every target is checked.
func TestHealthCheckBoundedConcurrency(t *testing.T) {
	reg := startRegistrar(t, regOptions{allow: "127.0.0.0/8"})
	var inFlight, most atomic.Int64
	var checked sync.Map
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		checked.Store(r.Host, true)
		time.Sleep(200 * time.Millisecond)
	})
	var addrs []string
	for range 40 {
		srv := httptest.NewServer(handler)
		t.Cleanup(srv.Close)
		addrs = append(addrs, srv.Listener.Addr().String())
	}
	send(t, "POST", reg.URL+"/api/servers/register", checkedServer("many", `{"path": "/healthz", "interval": "300ms", "timeout": "300ms"}`, addrs...), 200)
	waitFor(t, "every target checked", func() bool {
		n := 0
		checked.Range(func(any, any) bool { n++; return true })
		return n == len(addrs)
	})
	if m := most.Load(); m > checkWorkers || m < checkWorkers/2 {
		t.Fatalf("at most %d checks ran at once, want up to %d and about that many (40 slow targets)", m, checkWorkers)
	}
	t.Logf("at most %d checks at once", most.Load())
}
