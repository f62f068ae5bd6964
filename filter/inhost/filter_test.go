package inhost

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/internal/contract"
	"switchyard/internal/testkit/wait"
	"switchyard/wasmhost"
)

// These tests run the real filter.wasm (internal/testkit/bin) in the wasmhost, which behaves like
// Envoy, against a fake registrar on 127.0.0.1 (filter_helpers_test.go).

const syncWithin = 5 * time.Second // bound for a change to reach the routers

var demoRoutes = map[string]string{
	"web-1": "10.1.2.3:9000",
	"web-2": "10.1.2.4",
	"v6":    "[2001:db8::7]",
	"logs":  "logs.internal",
}

// startSynced gives a sync VM and n router VMs on one vm_id, with the registrar's
// table loaded.
func startSynced(t *testing.T, e *fEnv, n int, routerCfg []byte) []*wasmhost.VM {
	t.Helper()
	e.vm("sync", filterConfig(""))
	routers := make([]*wasmhost.VM, n)
	for i := range routers {
		routers[i] = e.vm("router", routerCfg)
	}
	e.waitLog("sync: table at revision", syncWithin)
	return routers
}

func TestFilterRouterOutcomes(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, copyRoutes(demoRoutes))
	r := startSynced(t, e, 1, filterConfig(""))[0]

	tests := []struct {
		name       string
		path       string
		server     string
		wantStatus int    // 0: the request continues
		wantError  string // "error" of the JSON reply
		authority  string // :authority after the filter when it continues
	}{
		{"other path untouched", "/api/servers", "web-1", 0, "", "proxy.example:8443"},
		{"prefix is segment-wise", "/system/x", "web-1", 0, "", "proxy.example:8443"},
		{"shorter path untouched", "/sy", "", 0, "", "proxy.example:8443"},
		{"missing header", "/sys/logs", "", 400, contract.CodeMissingServerName, ""},
		{"invalid name", "/sys/logs", "web/1", 400, contract.CodeInvalidServerName, ""},
		{"unknown name", "/sys/logs", "web-9", 404, contract.CodeUnknownServer, ""},
		{"names are case-sensitive", "/sys/logs", "WEB-1", 404, contract.CodeUnknownServer, ""},
		{"routed with its port", "/sys/logs/app.log?tail=10", "web-1", 0, "", "10.1.2.3:9000"},
		{"routed bare prefix", "/sys", "web-1", 0, "", "10.1.2.3:9000"},
		{"routed query right after prefix", "/sys?x=1", "web-1", 0, "", "10.1.2.3:9000"},
		{"default port added", "/sys/", "web-2", 0, "", "10.1.2.4:8080"},
		{"IPv6 default port", "/sys/x", "v6", 0, "", "[2001:db8::7]:8080"},
		{"DNS target", "/sys/x", "logs", 0, "", "logs.internal:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fRequest(t, r, tt.path, tt.server)
			if got.status() != tt.wantStatus || got.errorCode() != tt.wantError {
				t.Fatalf("got %d %q, want %d %q", got.status(), got.errorCode(), tt.wantStatus, tt.wantError)
			}
			if tt.wantStatus != 0 {
				if got.action != wasmhost.Stop {
					t.Errorf("action %v after a local reply, want Stop", got.action)
				}
				if ct, _ := got.local.Headers.Get("content-type"); ct != "application/json" {
					t.Errorf("content-type %q, want application/json", ct)
				}
				if got.local.Details != tt.wantError {
					t.Errorf("details %q, want %q", got.local.Details, tt.wantError)
				}
				return
			}
			if got.action != wasmhost.Continue || got.header(":authority") != tt.authority {
				t.Fatalf("action %v authority %q, want Continue %q", got.action, got.header(":authority"), tt.authority)
			}
			routed := tt.authority != "proxy.example:8443"
			if xfh := got.header("x-forwarded-host"); routed && xfh != "proxy.example:8443" || !routed && xfh != "" {
				t.Errorf("x-forwarded-host %q (routed %v)", xfh, routed)
			}
			if routed && got.header("x-server-name") != tt.server {
				t.Errorf("x-server-name removed although strip_header is false")
			}
		})
	}

	t.Run("unknown body names the server", func(t *testing.T) {
		got := fRequest(t, r, "/sys/x", "web-9")
		if want := `{"error":"unknown_server","message":"Server 'web-9' is not registered"}`; string(got.local.Body) != want {
			t.Errorf("body %s, want %s", got.local.Body, want)
		}
	})
	t.Run("empty header is missing", func(t *testing.T) {
		got := fRequestHeaders(t, r, wasmhost.Headers{{":method", "GET"}, {":path", "/sys"}, {":authority", "p"}, {"x-server-name", ""}})
		if got.errorCode() != contract.CodeMissingServerName {
			t.Errorf("got %d %q", got.status(), got.errorCode())
		}
	})
	t.Run("client x-forwarded-host overwritten", func(t *testing.T) {
		got := fRequestHeaders(t, r, wasmhost.Headers{{":method", "GET"}, {":path", "/sys"}, {":authority", "p.example"},
			{"x-server-name", "web-1"}, {"x-forwarded-host", "evil.example"}})
		if got.header("x-forwarded-host") != "p.example" {
			t.Errorf("x-forwarded-host %q, want p.example", got.header("x-forwarded-host"))
		}
	})
	t.Run("metrics count each outcome", func(t *testing.T) {
		// switchyard.routed is added on the router's tick (100 ms), the others at once.
		wait.Eventually(t, 2*time.Second, func() string {
			for name, min := range map[string]int64{contract.MetricRouted: 6, contract.MetricRejectedBase + contract.CodeMissingServerName: 2,
				contract.MetricRejectedBase + contract.CodeInvalidServerName: 1, contract.MetricRejectedBase + contract.CodeUnknownServer: 3,
				contract.MetricTableSize: 4, contract.MetricSyncSuccess: 1} {
				if v := e.metric(name); v < min {
					return fmt.Sprintf("%s = %d, want at least %d", name, v, min)
				}
			}
			return ""
		})
	})
}

func TestFilterStripHeader(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, copyRoutes(demoRoutes))
	r := startSynced(t, e, 1, filterConfig(`"strip_header": true, "header": "X-Target", "path_prefixes": ["/logs"]`))[0]
	got := fRequestHeaders(t, r, wasmhost.Headers{{":method", "GET"}, {":path", "/logs/a"}, {":authority", "p"}, {"x-target", "web-1"}})
	if got.header(":authority") != "10.1.2.3:9000" {
		t.Fatalf("authority %q, status %d", got.header(":authority"), got.status())
	}
	if _, ok := got.headers.Get("x-target"); ok {
		t.Errorf("x-target still present with strip_header true")
	}
	if got := fRequest(t, r, "/sys/a", "web-1"); got.local != nil || got.header(":authority") != "proxy.example:8443" {
		t.Errorf("/sys is not a configured prefix here but got %d %q", got.status(), got.header(":authority"))
	}
}

func TestFilterAnswers503BeforeFirstTable(t *testing.T) {
	clk := wasmhost.NewManualClock(time.Now()) // no tick yet: no router has polled
	e := newFEnv(t, wasmhost.Options{Clock: clk}, nil)
	r := e.vm(contract.RootRouter, filterConfig(""))
	got := fRequest(t, r, "/sys/x", "web-1")
	if got.status() != 503 || got.errorCode() != contract.CodeRoutesNotLoaded {
		t.Fatalf("got %d %q, want 503 routes_not_loaded", got.status(), got.errorCode())
	}
	if ra, _ := got.local.Headers.Get("retry-after"); ra != "1" {
		t.Errorf("retry-after %q, want 1", ra)
	}
	// Validation still comes first.
	if got := fRequest(t, r, "/sys/x", ""); got.status() != 400 {
		t.Errorf("missing header before the first table: %d, want 400", got.status())
	}
	// Once an (empty) table is loaded the same name is unknown, not unavailable.
	e.vm(contract.RootSync, filterConfig(""))
	advanceUntil(t, clk, 5*time.Second, "an empty table", func() bool { return fRequest(t, r, "/sys/x", "web-1").status() == 404 })
}

func TestFilterSyncFeedsTwoRouters(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, map[string]string{"web-1": "10.0.0.1:81"})
	routers := startSynced(t, e, 2, filterConfig(""))
	steps := []struct {
		name, server, target, authority string
	}{
		{"initial table", "web-1", "", "10.0.0.1:81"},
		{"add", "web-2", "10.0.0.2", "10.0.0.2:8080"},
		{"change", "web-1", "10.0.0.9:82", "10.0.0.9:82"},
		{"delete", "web-2", "", ""},
	}
	for i, st := range steps {
		if i > 0 {
			e.reg.put(st.server, st.target)
		}
		for _, r := range routers {
			waitRouted(t, r, st.server, st.authority, syncWithin)
		}
	}
	rev, _, _ := e.h.SharedData("switchyard", "switchyard/revision")
	if string(rev) != "4" || e.metric("switchyard.table.revision") != 4 || e.metric("switchyard.table.size") != 1 {
		t.Errorf("revision key %q, gauges revision %d size %d; want 4, 4, 1", rev,
			e.metric("switchyard.table.revision"), e.metric("switchyard.table.size"))
	}
	// The poll after the delete is sent once its answer is applied, which can be a
	// moment after the routers see the change: wait for it, then check it.
	wait.Eventually(t, syncWithin, func() string {
		_, last := e.reg.stats()
		if q := last.URL.Query(); q.Get("after") != "4" || q.Get("wait") != "1" || last.Header.Get("Authorization") != "" {
			return fmt.Sprintf("last poll %s with authorization %q; want after=4, wait=1, no authorization", last.URL, last.Header.Get("Authorization"))
		}
		return ""
	})
}

func TestFilterSyncSendsToken(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, nil)
	e.vm("sync", []byte(`{"registrar": {"wait_seconds": 1, "token": "s3cret", "authority": "reg.internal"}}`))
	e.waitLog("sync: table at revision", syncWithin)
	_, last := e.reg.stats()
	if last.Header.Get("Authorization") != "Bearer s3cret" || last.Host != "reg.internal" || last.Method != "GET" {
		t.Errorf("poll sent authorization %q host %q method %s", last.Header.Get("Authorization"), last.Host, last.Method)
	}
}

// TestFilterSyncTokenFromEnvironment: registrar.token_env reads the token from the
// VM's environment (Envoy's vm_config.environment_variables), as the hosts hand a
// plugin its secrets.
func TestFilterSyncTokenFromEnvironment(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, nil)
	e.vmWith(wasmhost.PluginConfig{Name: "switchyard", RootID: "sync", VMID: "switchyard",
		Configuration: []byte(`{"registrar": {"wait_seconds": 1, "token_env": "SWITCHYARD_REGISTRAR_TOKEN"}}`),
		Env:           map[string]string{"SWITCHYARD_REGISTRAR_TOKEN": "from-the-env"}})
	e.waitLog("sync: table at revision", syncWithin)
	if _, last := e.reg.stats(); last.Header.Get("Authorization") != "Bearer from-the-env" {
		t.Errorf("poll sent authorization %q, want the token from the VM's environment", last.Header.Get("Authorization"))
	}
}

// TestFilterKeepsTableWhenRegistrarFails: every kind of failure leaves the last good
// table routing, is logged once (not once per retry), and the sync recovers.
func TestFilterKeepsTableWhenRegistrarFails(t *testing.T) {
	tests := []struct {
		mode, log string
	}{
		{"500", "answered HTTP 500"},
		{"garbage", "invalid route table (body is not valid JSON)"},
		{"invalid", `invalid route table (server name "bad name" is invalid`},
		// A reset reaches the filter as a failed call or as the proxy's own 503,
		// depending on the proxy; either way the table stays.
		{"reset", "keeping the table at revision 1"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			e := newFEnv(t, wasmhost.Options{}, map[string]string{"web-1": "10.0.0.1"})
			r := startSynced(t, e, 1, filterConfig(""))[0]
			e.reg.setMode(tt.mode)
			e.waitLog(tt.log, syncWithin)
			failures := e.metric("switchyard.sync.failure")
			waitRouted(t, r, "web-1", "10.0.0.1:8080", time.Second)
			// Let at least one retry fail too (backoff starts at about 1 s).
			deadline := time.Now().Add(syncWithin)
			for e.metric("switchyard.sync.failure") == failures && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if e.metric("switchyard.sync.failure") == failures {
				t.Fatalf("no retry within %v", syncWithin)
			}
			if n := e.countLogs(tt.log); n != 1 {
				t.Errorf("%d log lines for %d failures, want 1", n, e.metric("switchyard.sync.failure"))
			}
			waitRouted(t, r, "web-1", "10.0.0.1:8080", time.Second)

			e.reg.setMode("")
			e.reg.put("web-1", "10.0.0.2")
			waitRouted(t, r, "web-1", "10.0.0.2:8080", 3*syncWithin)
			e.waitLog("sync: the registrar answers again", time.Second)
		})
	}
}

// TestFilterSurvivesSlowRegistrar drives the host clock: a registrar that never
// answers is cut off by the poll's timeout (wait + 10 s), and the table stays.
func TestFilterSurvivesSlowRegistrar(t *testing.T) {
	clk := wasmhost.NewManualClock(time.Now())
	e := newFEnv(t, wasmhost.Options{Clock: clk}, map[string]string{"web-1": "10.0.0.1"})
	e.vm("sync", filterConfig(""))
	r := e.vm("router", filterConfig(""))
	clk.Advance(200 * time.Millisecond) // first tick: the first poll
	e.waitLog("sync: table at revision 1", syncWithin)

	e.reg.setMode("hang")
	e.reg.put("web-1", "10.0.0.2") // wakes the waiting poll, which now hangs
	waitPolls(t, e.reg, 2)
	clk.Advance(12 * time.Second) // past the poll's timeout of wait + 10 s
	e.waitLog("keeping the table at revision 1", syncWithin)
	waitRouted(t, r, "web-1", "10.0.0.1:8080", time.Second)

	// The registrar answers again: the retry (due within the backoff) gets the table.
	e.reg.setMode("")
	deadline := time.Now().Add(syncWithin)
	for fRequest(t, r, "/sys/x", "web-1").header(":authority") != "10.0.0.2:8080" {
		if time.Now().After(deadline) {
			t.Fatalf("the change did not arrive after the registrar recovered\nlogs:\n%s", e.logText())
		}
		clk.Advance(100 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
}

func waitPolls(t *testing.T, reg *fRegistrar, n int) {
	t.Helper()
	deadline := time.Now().Add(syncWithin)
	for {
		if p, _ := reg.stats(); p >= n {
			return
		}
		if time.Now().After(deadline) {
			p, _ := reg.stats()
			t.Fatalf("the registrar saw %d polls, want %d", p, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFilterHandles100kNames(t *testing.T) {
	routes := make(map[string]string, 100_000)
	for i := 0; i < 100_000; i++ {
		routes["name-"+strconv.Itoa(i)] = "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + ":8080"
	}
	e := newFEnv(t, wasmhost.Options{}, routes)
	e.vm("sync", filterConfig(""))
	r := e.vm("router", filterConfig(""))
	// Parsing and writing 100,000 names takes seconds; the bound leaves room for a
	// loaded machine.
	e.waitLog("sync: table at revision 1: 100000 servers", 60*time.Second)
	if e.metric("switchyard.table.size") != 100_000 {
		t.Fatalf("table size %d", e.metric("switchyard.table.size"))
	}
	for _, name := range []string{"name-0", "name-65535", "name-99999"} {
		i, _ := strconv.Atoi(strings.TrimPrefix(name, "name-"))
		want := routes[name]
		if got := fRequest(t, r, "/sys/x", name); got.header(":authority") != want {
			t.Errorf("%s → %q (status %d), want %s (index %d)", name, got.header(":authority"), got.status(), want, i)
		}
	}
	// One change in 100,000 writes one name, not the table.
	e.reg.put("name-7", "10.7.7.7:7")
	e.waitLog("100000 servers (0 added, 1 changed, 0 removed)", syncWithin)
	waitRouted(t, r, "name-7", "10.7.7.7:7", time.Second)
}

func TestFilterRefusesBadConfiguration(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, nil)
	tests := []struct {
		name, root, cfg, log string
	}{
		{"unknown key", "router", `{"headr": "x"}`, `unknown key "headr"`},
		{"unknown registrar key", "sync", `{"registrar": {"timeout": 5}}`, `unknown key "registrar.timeout"`},
		{"wrong type", "router", `{"default_port": "80"}`, `key "default_port" must be an integer`},
		{"bad value", "sync", `{"registrar": {"wait_seconds": 0}}`, `key "registrar.wait_seconds": 0 is out of range`},
		{"not JSON", "router", `{"header": `, "not valid JSON"},
		{"bad proxy id", "sync", `{"proxy_id": "edge 1"}`, `key "proxy_id": "edge 1" must be at most 200 characters`},
		{"unknown root id", "filter", `{}`, `unknown root_id "filter"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm, err := e.mod.NewVM(t.Context(), wasmhost.PluginConfig{Name: "switchyard", RootID: tt.root, VMID: "bad", Configuration: []byte(tt.cfg)})
			if err == nil {
				vm.Close()
				t.Fatalf("NewVM accepted configuration %s", tt.cfg)
			}
			if e.countLogs(tt.log) == 0 {
				t.Errorf("NewVM error %q; no log line names the problem (%q)\nlogs:\n%s", err, tt.log, e.logText())
			}
		})
	}
}

// TestFilterNeverCallsPollOneoff: the filter arms no Go timer, so the Go runtime never
// calls poll_oneoff — not in a sync, not over thousands of requests, not in GC. Under
// the Legacy profile (Envoy 1.33–1.37) one call would crash the VM.
func TestFilterNeverCallsPollOneoff(t *testing.T) {
	for _, p := range []struct {
		name    string
		profile wasmhost.Profile
	}{{"current", wasmhost.Current}, {"legacy", wasmhost.Legacy}} {
		t.Run(p.name, func(t *testing.T) {
			routes := make(map[string]string, 20_000)
			for i := 0; i < 20_000; i++ {
				routes["n"+strconv.Itoa(i)] = "10.0." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
			}
			e := newFEnv(t, wasmhost.Options{Profile: p.profile}, routes)
			gc := map[string]string{"GOGC": "1"} // collect often: the point is GC cycles
			syncVM := e.vmWith(wasmhost.PluginConfig{Name: "switchyard", RootID: "sync", VMID: "switchyard", Configuration: filterConfig(""), Env: gc})
			r := e.vmWith(wasmhost.PluginConfig{Name: "switchyard", RootID: "router", VMID: "switchyard", Configuration: filterConfig(""), Env: gc})
			e.waitLog("sync: table at revision", syncWithin)
			for i := 0; i < 4000; i++ {
				name := "n" + strconv.Itoa(i*5)
				if i%10 == 9 {
					name = "nope-" + strconv.Itoa(i)
				}
				got := fRequest(t, r, "/sys/x", name)
				if i%10 != 9 && got.local != nil || i%10 == 9 && got.status() != 404 {
					t.Fatalf("request %d (%s): status %d", i, name, got.status())
				}
				if i%1000 == 0 {
					e.reg.put("n"+strconv.Itoa(i), "10.9.9.9") // keep the sync busy too
				}
			}
			for _, vm := range []*wasmhost.VM{syncVM, r} {
				if err := vm.Err(); err != nil {
					t.Fatalf("a VM died: %v", err)
				}
			}
			if n := e.h.PollOneoffCalls(); n != 0 {
				t.Fatalf("poll_oneoff called %d times, want 0", n)
			}
		})
	}
}

func copyRoutes(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
