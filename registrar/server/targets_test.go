package server

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/internal/registrarapi"
	"switchyard/internal/testkit/etcdtest"
	"switchyard/registrar/store"
	"switchyard/registrar/store/etcdstore"
)

// send makes one API call and decodes its answer, requiring the status code and
// the result shape.
func send(t *testing.T, method, url, body string, code int) registrarapi.Answer {
	t.Helper()
	r := call(t, method, url, body)
	var a registrarapi.Answer
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatalf("%s %s: %d, not JSON in the result shape: %v: %s", method, url, r.Code, err, r.Body)
	}
	if r.Code != code || a.Result.Success != (code == 200) {
		t.Fatalf("%s %s %s: %d %s, want %d", method, url, body, r.Code, r.Body, code)
	}
	return a
}

func views(ts ...registrarapi.Target) []registrarapi.Target { return ts }

func up(address string, weight int, state string) registrarapi.Target {
	return registrarapi.Target{Address: address, Weight: weight, State: state, Health: healthUp}
}

func sameTargets(t *testing.T, what string, got *registrarapi.Server, ip string, want []registrarapi.Target) {
	t.Helper()
	if got == nil || got.Target != ip || fmt.Sprint(got.Targets) != fmt.Sprint(want) {
		t.Fatalf("%s: %+v, want ipAddress %s and targets %v", what, got, ip, want)
	}
}

const blueGreen = `{"host": "web", "serviceName": "shop", "targets": [
	{"address": "10.0.0.1:8080", "weight": 90, "state": "active"},
	{"address": "10.0.0.2:8080", "weight": 10},
	{"address": "web-green.internal", "state": "draining"}]}`

// A whole set is written in one call and read back in every answer; ipAddress alone is
// one active target of weight 1; ipAddress is always the first active target.
func TestTargetsSetAndShow(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	set := views(up("10.0.0.1:8080", 90, "active"), up("10.0.0.2:8080", 10, "active"), up("web-green.internal", 1, "draining"))
	a := send(t, "POST", reg.URL+"/api/servers/register", blueGreen, 200)
	sameTargets(t, "register answer", a.Result.Server, "10.0.0.1:8080", set)
	rev := *a.Result.Revision
	sameTargets(t, "GET", send(t, "GET", reg.URL+"/api/servers/web", "", 200).Result.Server, "10.0.0.1:8080", set)

	// The same set again changes nothing.
	if a := send(t, "PUT", reg.URL+"/api/servers/web", blueGreen, 200); *a.Result.Changed || *a.Result.Revision != rev {
		t.Fatalf("the same set again: changed %v at revision %d, want unchanged at %d", *a.Result.Changed, *a.Result.Revision, rev)
	}
	// ipAddress given with targets must be the first active one: here the first is
	// draining and the second has weight 0, so it is the third.
	a = send(t, "PUT", reg.URL+"/api/servers/web", `{"serviceName": "shop", "ipAddress": "10.0.0.3:8080", "targets": [
		{"address": "10.0.0.1:8080", "state": "draining"}, {"address": "10.0.0.2:8080", "weight": 0}, {"address": "10.0.0.3:8080"}]}`, 200)
	sameTargets(t, "agreeing ipAddress", a.Result.Server, "10.0.0.3:8080",
		views(up("10.0.0.1:8080", 1, "draining"), up("10.0.0.2:8080", 0, "active"), up("10.0.0.3:8080", 1, "active")))
	if *a.Result.Revision != rev+1 {
		t.Fatalf("a replaced set: revision %d, want %d (one write, one revision)", *a.Result.Revision, rev+1)
	}
	// ipAddress alone: one target, shown as such; the old shape is unchanged.
	register(t, reg.URL, "one", "10.0.0.9:80", "logs")
	sameTargets(t, "ipAddress alone", send(t, "GET", reg.URL+"/api/servers/one", "", 200).Result.Server, "10.0.0.9:80", views(up("10.0.0.9:80", 1, "active")))
	var list struct {
		Result struct{ Servers []registrarapi.Server } `json:"result"`
	}
	if err := json.Unmarshal(call(t, "GET", reg.URL+"/api/servers", "").Body, &list); err != nil || len(list.Result.Servers) != 2 ||
		len(list.Result.Servers[0].Targets) != 1 || len(list.Result.Servers[1].Targets) != 3 {
		t.Fatalf("list: %v %+v, want one with 1 target and web with 3", err, list.Result.Servers)
	}
}

// One target is added, changed and removed without resending the others; an unknown
// server or target is 404; the address in the path is URL-escaped.
func TestTargetsChangeOne(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	send(t, "POST", reg.URL+"/api/servers/register", blueGreen, 200)
	base := reg.URL + "/api/servers/web/targets"
	v6 := "[2001:db8::7]:9000"
	a := send(t, "POST", base, `{"address": "`+v6+`", "weight": 5}`, 200)
	sameTargets(t, "added", a.Result.Server, "10.0.0.1:8080", views(up("10.0.0.1:8080", 90, "active"), up("10.0.0.2:8080", 10, "active"),
		up("web-green.internal", 1, "draining"), up(v6, 5, "active")))
	send(t, "POST", base, `{"address": "10.0.0.2:8080"}`, 409)

	// Blue/green by single targets: drain blue, activate green.
	send(t, "PATCH", base+"/10.0.0.1:8080", `{"state": "draining"}`, 200)
	a = send(t, "PATCH", base+"/web-green.internal?wait=applied&timeout=2s", `{"state": "active", "weight": 100}`, 200)
	if a.Result.Applied == nil {
		t.Errorf("wait=applied on PATCH: no applied in %+v", a.Result)
	}
	sameTargets(t, "patched", a.Result.Server, "10.0.0.2:8080", views(up("10.0.0.1:8080", 90, "draining"), up("10.0.0.2:8080", 10, "active"),
		up("web-green.internal", 100, "active"), up(v6, 5, "active")))
	a = send(t, "DELETE", base+"/"+url.PathEscape(v6), "", 200)
	a = send(t, "DELETE", base+"/10.0.0.2:8080", "", 200)
	sameTargets(t, "deleted", a.Result.Server, "web-green.internal", views(up("10.0.0.1:8080", 90, "draining"), up("web-green.internal", 100, "active")))

	rev := reg.Store.Current().Revision()
	for _, c := range []struct{ method, path, body string }{
		{"PATCH", base + "/10.9.9.9", `{"weight": 1}`},
		{"DELETE", base + "/10.9.9.9", ""},
		{"PATCH", reg.URL + "/api/servers/nobody/targets/10.0.0.1:8080", `{"weight": 1}`},
		{"POST", reg.URL + "/api/servers/nobody/targets", `{"address": "10.0.0.1"}`},
	} {
		if a := send(t, c.method, c.path, c.body, 404); !strings.Contains(a.Result.Error, "not") {
			t.Errorf("%s %s: %q does not say what is not there", c.method, c.path, a.Result.Error)
		}
	}
	// The last target cannot go: the server would have none.
	send(t, "DELETE", base+"/10.0.0.1:8080", "", 200)
	if a := send(t, "DELETE", base+"/web-green.internal", "", 400); !strings.Contains(a.Result.Error, "only target") {
		t.Errorf("deleting the last target: %q", a.Result.Error)
	}
	if got := reg.Store.Current().Revision(); got != rev+1 {
		t.Fatalf("revision %d, want %d: refused writes moved it", got, rev+1)
	}
}

// A set in which nothing takes requests is refused unless the write says
// allowNoActive=true; then version 3 carries it and versions 1 and 2 the first target.
func TestTargetsNoActiveNeedsConsent(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	send(t, "POST", reg.URL+"/api/servers/register", blueGreen, 200)
	allDraining := `{"serviceName": "shop", "targets": [{"address": "10.0.0.1:8080", "state": "draining"}, {"address": "10.0.0.2:8080", "weight": 0}]}`
	send(t, "PUT", reg.URL+"/api/servers/web", allDraining, 400)
	send(t, "PUT", reg.URL+"/api/servers/web?allowNoActive=yes", allDraining, 400)
	a := send(t, "PUT", reg.URL+"/api/servers/web?allowNoActive=true", allDraining, 200)
	if a.Result.Server.Target != "10.0.0.1:8080" {
		t.Errorf("ipAddress of a set without an active target: %q, want the first target", a.Result.Server.Target)
	}
	want := map[int]string{1: "10.0.0.1:8080", 2: "10.0.0.1:8080", 3: "*10.0.0.1:8080/1/d,10.0.0.2:8080/0"}
	for v, w := range want {
		if got := routeIn(t, reg, v, "web"); got != w {
			t.Errorf("v%d: web → %q, want %q", v, got, w)
		}
	}
	// Activating one target by PATCH needs no consent; draining it again does.
	send(t, "PATCH", reg.URL+"/api/servers/web/targets/10.0.0.2:8080", `{"weight": 3}`, 200)
	send(t, "PATCH", reg.URL+"/api/servers/web/targets/10.0.0.2:8080", `{"state": "draining"}`, 400)
	send(t, "PATCH", reg.URL+"/api/servers/web/targets/10.0.0.2:8080?allowNoActive=true", `{"state": "draining"}`, 200)
}

// routeIn is name's route value in a full answer of protocol version v (1, 2, 3).
func routeIn(t *testing.T, reg *testRegistrar, v int, name string) string {
	t.Helper()
	q := "/v1/routes"
	if v > 1 {
		q += fmt.Sprintf("?v=%d", v)
	}
	r := call(t, "GET", reg.URL+q, "")
	var a struct {
		Routes map[string]string `json:"routes"`
	}
	if err := json.Unmarshal(r.Body, &a); r.Code != 200 || err != nil {
		t.Fatalf("v%d: %d %v %s", v, r.Code, err, r.Body)
	}
	return a.Routes[name]
}

// Version 3 sends target-set strings in pages and deltas, version 2 and 1 the first
// active target; a health finding (set by the store's Update, as the health check
// does) shows in v3, in the API's health, and moves v1/v2 off the down target, and a
// write of the API keeps it for the addresses it keeps.
func TestTargetsSyncVersions(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	register(t, reg.URL, "plain", "10.0.0.9:80", "logs")
	send(t, "POST", reg.URL+"/api/servers/register", blueGreen, 200)
	set := "*10.0.0.1:8080/90,10.0.0.2:8080/10,web-green.internal/1/d"
	for v, w := range map[int]string{1: "10.0.0.1:8080", 2: "10.0.0.1:8080", 3: set} {
		if got := routeIn(t, reg, v, "web"); got != w {
			t.Errorf("v%d full: web → %q, want %q", v, got, w)
		}
		if got := routeIn(t, reg, v, "plain"); got != "10.0.0.9:80" {
			t.Errorf("v%d full: plain → %q, want the plain address", v, got)
		}
	}
	rev, lineage := reg.Store.Current().Revision(), reg.Store.Lineage()
	out := reg.Store.Write(store.Change{Name: "web", Update: func(old *store.Server) (*store.Server, error) {
		ts := append([]store.Target(nil), old.Targets...)
		ts[0].Down = true
		sv := store.NewServer(old.Name, old.Service, ts)
		return &sv, nil
	}})
	if out.Err != nil || !out.Changed {
		t.Fatalf("marking a target down: %+v", out)
	}
	delta := func(v int) map[string]string {
		r := call(t, "GET", fmt.Sprintf("%s/v1/routes?v=%d&after=%d&lineage=%s", reg.URL, v, rev, lineage), "")
		var a struct {
			Kind    string            `json:"kind"`
			Upserts map[string]string `json:"upserts"`
		}
		if err := json.Unmarshal(r.Body, &a); err != nil || a.Kind != "delta" {
			t.Fatalf("v%d delta: %d %v %s", v, r.Code, err, r.Body)
		}
		return a.Upserts
	}
	if got := delta(3); len(got) != 1 || got["web"] != "*10.0.0.1:8080/90/x,10.0.0.2:8080/10,web-green.internal/1/d" {
		t.Errorf("v3 delta: %v", got)
	}
	if got := delta(2); len(got) != 1 || got["web"] != "10.0.0.2:8080" {
		t.Errorf("v2 delta: %v, want web → 10.0.0.2:8080 (the first active target that is up)", got)
	}
	if got := routeIn(t, reg, 1, "web"); got != "10.0.0.2:8080" {
		t.Errorf("v1: web → %q, want 10.0.0.2:8080", got)
	}
	// The API shows the finding, keeps ipAddress as registered, and a write that
	// keeps the address keeps its health.
	a := send(t, "PATCH", reg.URL+"/api/servers/web/targets/10.0.0.2:8080", `{"weight": 20}`, 200)
	if s := a.Result.Server; s.Target != "10.0.0.1:8080" || s.Targets[0].Health != healthDown || s.Targets[1].Health != healthUp {
		t.Fatalf("after a PATCH: %+v, want ipAddress 10.0.0.1:8080 with its target down, the others up", s)
	}
	a = send(t, "PUT", reg.URL+"/api/servers/web", `{"serviceName": "shop", "targets": [{"address": "10.0.0.3:8080"}, {"address": "10.0.0.1:8080"}]}`, 200)
	if s := a.Result.Server; s.Targets[0].Health != healthUp || s.Targets[1].Health != healthDown {
		t.Fatalf("after a PUT: %+v, want 10.0.0.1:8080 still down, the new target up", s)
	}
}

// Bad input is refused with a 400 in the result shape that names the field, and
// stores nothing: the revision does not move and the server stays as it was.
func TestTargetsBadInput(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	send(t, "POST", reg.URL+"/api/servers/register", blueGreen, 200)
	register(t, reg.URL, "solo", "10.0.0.5", "logs")
	before := call(t, "GET", reg.URL+"/api/servers", "").Body
	rev := reg.Store.Current().Revision()
	many := make([]string, 65)
	for i := range many {
		many[i] = fmt.Sprintf(`{"address": "10.0.1.%d"}`, i+1)
	}
	withTargets := func(list string) string { return `{"serviceName": "shop", "targets": [` + list + `]}` }
	put := reg.URL + "/api/servers/web"
	patch := reg.URL + "/api/servers/web/targets/10.0.0.2:8080"
	for _, c := range []struct{ name, method, url, body, field string }{
		{"65 targets", "PUT", put, withTargets(strings.Join(many, ",")), "targets: 65 targets"},
		{"no targets", "PUT", put, withTargets(""), "targets: 0 targets"},
		{"targets null", "PUT", put, `{"serviceName": "shop", "targets": null}`, "targets: must be an array"},
		{"targets an object", "PUT", put, `{"serviceName": "shop", "targets": {"address": "10.0.0.1"}}`, "targets: must be an array"},
		{"target a string", "PUT", put, withTargets(`"10.0.0.1"`), "targets[0]: must be a JSON object"},
		{"weight -1", "PUT", put, withTargets(`{"address": "10.0.0.1", "weight": -1}`), "targets[0].weight: must be a whole number from 0 to 100 (got -1)"},
		{"weight 101", "PUT", put, withTargets(`{"address": "10.0.0.1"}, {"address": "10.0.0.2", "weight": 101}`), "targets[1].weight: must be a whole number from 0 to 100 (got 101)"},
		{"weight x", "PUT", put, withTargets(`{"address": "10.0.0.1", "weight": "x"}`), `targets[0].weight: must be a whole number from 0 to 100 (got "x")`},
		{"weight 1.5", "PUT", put, withTargets(`{"address": "10.0.0.1", "weight": 1.5}`), "targets[0].weight: must be a whole number from 0 to 100 (got 1.5)"},
		{"weight 1e1", "PUT", put, withTargets(`{"address": "10.0.0.1", "weight": 1e1}`), "targets[0].weight:"},
		{"state", "PUT", put, withTargets(`{"address": "10.0.0.1", "state": "off"}`), `targets[0].state: must be "active" or "draining"`},
		{"no address", "PUT", put, withTargets(`{"weight": 1}`), "targets[0].address: missing"},
		{"bad address", "PUT", put, withTargets(`{"address": "10.0.0.1"}, {"address": "not an address"}`), "targets[1].address:"},
		{"long address", "PUT", put, withTargets(`{"address": "` + strings.Repeat("a", 50) + "." + strings.Repeat("b", 50) + `"}`), "targets[0].address: must be at most 100 characters"},
		{"refused address", "PUT", put, withTargets(`{"address": "10.0.0.1"}, {"address": "169.254.169.254"}`), "targets[1].address: refused"},
		{"loopback", "POST", reg.URL + "/api/servers/web/targets", `{"address": "127.0.0.1:9101"}`, "target.address: refused"},
		{"duplicate", "PUT", put, withTargets(`{"address": "10.0.0.1"}, {"address": "10.0.0.2"}, {"address": "10.0.0.1", "weight": 5}`), `targets[2].address: "10.0.0.1" is also targets[0]`},
		{"unknown field", "PUT", put, withTargets(`{"address": "10.0.0.1", "port": 80}`), `targets[0]: field "port" is not known`},
		{"field twice", "PUT", put, withTargets(`{"address": "10.0.0.1", "weight": 1, "weight": 2}`), `targets[0]: field "weight" appears more than once`},
		{"targets twice", "PUT", put, `{"serviceName": "shop", "targets": [{"address": "10.0.0.1"}], "targets": [{"address": "10.0.0.2"}]}`, `field "targets" appears more than once`},
		{"all draining", "PUT", put, withTargets(`{"address": "10.0.0.1", "state": "draining"}, {"address": "10.0.0.2", "state": "draining"}`), "targets: no target is active"},
		{"all weight 0", "POST", reg.URL + "/api/servers/register", `{"host": "web", "serviceName": "shop", "targets": [{"address": "10.0.0.1", "weight": 0}]}`, "targets: no target is active"},
		{"ipAddress disagrees", "PUT", put, `{"serviceName": "shop", "ipAddress": "10.0.0.2", "targets": [{"address": "10.0.0.1"}, {"address": "10.0.0.2"}]}`, "ipAddress: '10.0.0.2' is not the first active target"},
		{"neither", "PUT", put, `{"serviceName": "shop"}`, "missing field(s): ipAddress"},
		{"patch weight -1", "PATCH", patch, `{"weight": -1}`, "target.weight: must be a whole number"},
		{"patch unknown field", "PATCH", patch, `{"weight": 1, "down": true}`, `target: field "down" is not known`},
		{"patch nothing", "PATCH", patch, `{}`, "target: nothing to change"},
		{"patch other address", "PATCH", patch, `{"address": "10.0.0.1:8080", "weight": 1}`, "target.address: the body says"},
		{"patch not JSON", "PATCH", patch, `{"weight": 1`, "target: invalid JSON"},
		{"patch trailing data", "PATCH", patch, `{"weight": 1} {}`, "target: invalid JSON: unexpected data"},
		{"patch drains the last", "PATCH", reg.URL + "/api/servers/solo/targets/10.0.0.5", `{"state": "draining"}`, "targets: no target is active"},
		{"patch weight 0 of the last", "PATCH", reg.URL + "/api/servers/solo/targets/10.0.0.5", `{"weight": 0}`, "targets: no target is active"},
		{"allowNoActive value", "PUT", put + "?allowNoActive=1", withTargets(`{"address": "10.0.0.1"}`), "allowNoActive:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := send(t, c.method, c.url, c.body, 400)
			if !strings.HasPrefix(a.Result.Error, c.field) && !strings.Contains(a.Result.Error, c.field) {
				t.Errorf("error %q does not name %q", a.Result.Error, c.field)
			}
			if got := reg.Store.Current().Revision(); got != rev {
				t.Fatalf("revision moved %d → %d", rev, got)
			}
		})
	}
	if after := call(t, "GET", reg.URL+"/api/servers", "").Body; string(after) != string(before) {
		t.Errorf("refused writes changed the table:\n%s\n%s", before, after)
	}
}

// The registrar answers the same over either store: the same writes through the API
// (whole sets, one-target changes, a set without an active target) on a registrar
// over a data file and one over a real etcd, both starting from data written before
// target sets (an old data file, an old etcd key), give the same servers and the same
// v1, v2 and v3 full tables and deltas.
func TestTargetsStoresAnswerTheSame(t *testing.T) {
	c := etcdtest.Start(t, 1)
	const prefix = "/targets-test/"
	oldServer := `{"host":"old-1","ipAddress":"10.1.2.3:8080","serviceName":"logs","updatedAt":"2026-11-01T10:00:00Z"}`
	if _, err := c.Client(t).Put(t.Context(), prefix+"old-1", oldServer); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "servers.json")
	if err := os.WriteFile(data, []byte(`{"revision": 1, "servers": [`+oldServer+`]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	emb := startRegistrar(t, regOptions{data: data})
	m := NewMetrics()
	st, err := etcdstore.Open(t.Context(), etcdstore.Options{Options: StoreOptions(Config{}, nil, m), Endpoints: c.Endpoints(), Prefix: prefix, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{}, st, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		st.Close()
	})
	etc := &testRegistrar{URL: serve(t, srv), Server: srv, Store: st}

	// servers is GET /api/servers without what differs by store (revisions, times).
	servers := func(reg *testRegistrar) string {
		var a registrarapi.Answer
		if err := json.Unmarshal(call(t, "GET", reg.URL+"/api/servers", "").Body, &a); err != nil || a.Result.Servers == nil {
			t.Fatalf("GET /api/servers: %v", err)
		}
		for i := range *a.Result.Servers {
			(*a.Result.Servers)[i].UpdatedAt = time.Time{}
		}
		b, _ := json.Marshal(a.Result.Servers)
		return string(b)
	}
	// answer is a v1/v2/v3 answer's routes or upserts and removals.
	answer := func(reg *testRegistrar, v int, after uint64) string {
		q := "/v1/routes"
		if v > 1 {
			q += fmt.Sprintf("?v=%d", v)
			if after > 0 {
				q += fmt.Sprintf("&after=%d&lineage=%s", after, reg.Store.Lineage())
			}
		}
		var a struct {
			Kind     string            `json:"kind"`
			Routes   map[string]string `json:"routes"`
			Upserts  map[string]string `json:"upserts"`
			Removals []string          `json:"removals"`
		}
		r := call(t, "GET", reg.URL+q, "")
		if err := json.Unmarshal(r.Body, &a); r.Code != 200 || err != nil {
			t.Fatalf("%s: %d %v %s", q, r.Code, err, r.Body)
		}
		return fmt.Sprintf("%s %v %v %v", a.Kind, a.Routes, a.Upserts, a.Removals)
	}
	steps := []struct{ method, path, body string }{
		{"POST", "/api/servers/register", blueGreen},
		{"PATCH", "/api/servers/web/targets/10.0.0.2:8080", `{"weight": 30}`},
		{"POST", "/api/servers/old-1/targets", `{"address": "[2001:db8::7]:9000", "weight": 2}`},
		{"PATCH", "/api/servers/web/targets/10.0.0.1:8080", `{"state": "draining"}`},
		{"DELETE", "/api/servers/web/targets/web-green.internal", ""},
		{"PUT", "/api/servers/web?allowNoActive=true", `{"serviceName": "shop", "targets": [{"address": "10.0.0.1:8080", "state": "draining"}]}`},
		{"PUT", "/api/servers/old-1", `{"ipAddress": "10.1.2.4", "serviceName": "logs"}`},
		{"DELETE", "/api/servers/web", ""},
	}
	for i, s := range steps {
		before := []uint64{emb.Store.Current().Revision(), etc.Store.Current().Revision()}
		for _, reg := range []*testRegistrar{emb, etc} {
			if r := call(t, s.method, reg.URL+s.path, s.body); r.Code != 200 {
				t.Fatalf("step %d %s %s: %d %s", i, s.method, s.path, r.Code, r.Body)
			}
		}
		if a, b := servers(emb), servers(etc); a != b {
			t.Fatalf("step %d: servers differ:\nembedded %s\netcd     %s", i, a, b)
		}
		for v := 1; v <= 3; v++ {
			if a, b := answer(emb, v, 0), answer(etc, v, 0); a != b {
				t.Fatalf("step %d: v%d full tables differ:\nembedded %s\netcd     %s", i, v, a, b)
			}
		}
		for v := 2; v <= 3; v++ {
			a, b := answer(emb, v, before[0]), answer(etc, v, before[1])
			if a != b || !strings.HasPrefix(a, "delta") {
				t.Fatalf("step %d: v%d deltas:\nembedded %s\netcd     %s", i, v, a, b)
			}
		}
	}
}
