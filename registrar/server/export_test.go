package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"switchyard/internal/registrarapi"
	"switchyard/registrar/store"
)

type exported = registrarapi.Export

func export(t *testing.T, reg *testRegistrar, hdr ...string) (exported, string) {
	t.Helper()
	r := call(t, "GET", reg.URL+"/api/export", "", hdr...)
	if r.Code != 200 {
		t.Fatalf("export: %d %s", r.Code, r.Body)
	}
	var e exported
	dec := json.NewDecoder(strings.NewReader(string(r.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("export does not parse: %v\n%s", err, r.Body)
	}
	return e, string(r.Body)
}

// The export is the whole table at one revision with its lineage, every server in
// the API's shape; importing it back makes exactly that table current in one write
// under a new lineage, so a proxy of the old history takes it whole. The seed's map
// form is taken too.
func TestExportImportRoundTrip(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	register(t, reg.URL, "web-1", "10.1.2.3:8080", "logs")
	register(t, reg.URL, "web-2", "web-2.internal", "로그")
	if r := call(t, "POST", reg.URL+"/api/servers/register", `{"host": "web-t", "serviceName": "shop", "healthCheck": {"path": "/up", "interval": "7s"}, "targets": [{"address": "10.1.2.7", "weight": 0, "state": "active"}, {"address": "10.1.2.8", "weight": 3, "state": "active"}, {"address": "10.1.2.9", "weight": 1, "state": "draining"}]}`); r.Code != 200 {
		t.Fatalf("register with targets: %d %s", r.Code, r.Body)
	}
	withTargets := reg.Store.Current()
	e, body := export(t, reg)
	if len(e.Servers) != 3 || len(e.Servers[2].Targets) != 3 || e.Servers[2].Targets[1].Weight != 3 || e.Servers[2].Targets[2].State != "draining" {
		t.Fatalf("export of a target set: %+v", e.Servers)
	}
	if r := call(t, "POST", reg.URL+"/api/import", body); r.Code != 200 {
		t.Fatalf("import of the export: %d %s", r.Code, r.Body)
	}
	if sv, _ := reg.Store.Current().Get("web-t"); !reflect.DeepEqual(sv, func() store.Server { o, _ := withTargets.Get("web-t"); return o }()) {
		t.Fatalf("web-t after the round trip: %+v", sv)
	}
	if r := call(t, "DELETE", reg.URL+"/api/servers/web-t", ""); r.Code != 200 {
		t.Fatal(r.Code)
	}
	e, body = export(t, reg)
	if e.Revision != 5 || e.Lineage != reg.Store.Lineage() || len(e.Servers) != 2 || e.Servers[1].Service != "로그" || e.Servers[0].UpdatedAt.IsZero() {
		t.Fatalf("export %+v", e)
	}
	kept := e.Servers[0].UpdatedAt
	register(t, reg.URL, "web-3", "10.1.2.5", "later")
	if r := call(t, "DELETE", reg.URL+"/api/servers/web-1", ""); r.Code != 200 {
		t.Fatal(r.Code)
	}
	oldLineage := reg.Store.Lineage()
	r := call(t, "POST", reg.URL+"/api/import", body)
	var res struct {
		Result struct {
			Success            bool
			Revision, Imported int
			Lineage            string
		}
	}
	json.Unmarshal(r.Body, &res)
	if got := res.Result; r.Code != 200 || !got.Success || got.Revision != 8 || got.Imported != 2 || got.Lineage == oldLineage || got.Lineage != reg.Store.Lineage() {
		t.Fatalf("import: %d %s", r.Code, r.Body)
	}
	after, _ := export(t, reg)
	if len(after.Servers) != 2 || after.Servers[0].Name != "web-1" || !after.Servers[0].UpdatedAt.Equal(kept) || after.Servers[1].Target != "web-2.internal" {
		t.Fatalf("after import: %+v", after)
	}
	code, a, _ := sync2(t, reg, "lineage="+oldLineage+"&after=7")
	if code != 200 || a.Kind != "full" || a.Lineage != after.Lineage || len(a.Routes) != 2 {
		t.Fatalf("a proxy of the old history: %d %+v", code, a)
	}

	r = call(t, "POST", reg.URL+"/api/import", `{"web-9": "10.1.2.9", "web-2": "web-2.internal"}`)
	if r.Code != 200 {
		t.Fatalf("map import: %d %s", r.Code, r.Body)
	}
	m, _ := export(t, reg)
	if len(m.Servers) != 2 || m.Servers[0].Name != "web-2" || m.Servers[0].Service != "로그" || m.Servers[1].Service != importedServiceName {
		t.Fatalf("after the map import: %+v", m.Servers)
	}

	// A table larger than a registration's 64 KiB limit.
	var b strings.Builder
	b.WriteString(`{"servers": [`)
	for i := range 2000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"host": "web-%04d", "ipAddress": "10.2.%d.%d", "serviceName": "bulk"}`, i, i/200, i%200+1)
	}
	b.WriteString(`]}`)
	if r := call(t, "POST", reg.URL+"/api/import", b.String()); r.Code != 200 || reg.Store.Current().Len() != 2000 {
		t.Fatalf("import of 2000 servers (%d bytes): %d %s", b.Len(), r.Code, r.Body)
	}
}

// A bad import is refused whole, naming the entry at fault; nothing changes.
func TestImportRefusals(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	register(t, reg.URL, "web-1", "10.1.2.3:8080", "logs")
	rev, lineage := reg.Store.Current().Revision(), reg.Store.Lineage()
	for _, c := range []struct{ name, body, want string }{
		{"not JSON", `servers`, "invalid JSON"},
		{"array", `[]`, "JSON object"},
		{"loopback target", `{"servers": [{"host": "a", "ipAddress": "10.0.0.1", "serviceName": "s"}, {"host": "b", "ipAddress": "127.0.0.1", "serviceName": "s"}]}`, "servers[1]: ipAddress: refused"},
		{"name twice", `{"servers": [{"host": "a", "ipAddress": "10.0.0.1", "serviceName": "s"}, {"host": "a", "ipAddress": "10.0.0.2", "serviceName": "s"}]}`, `servers[1]: host "a" appears more than once`},
		{"unknown field", `{"servers": [{"host": "a", "ipAddress": "10.0.0.1", "serviceName": "s", "port": 80}]}`, `servers[0]`},
		{"unknown top field", `{"servers": [], "extra": 1}`, `"extra"`},
		{"missing serviceName", `{"servers": [{"host": "a", "ipAddress": "10.0.0.1"}]}`, "servers[0]: serviceName"},
		{"loopback among targets", `{"servers": [{"host": "a", "serviceName": "s", "targets": [{"address": "10.0.0.1", "weight": 1, "state": "active"}, {"address": "127.0.0.1", "weight": 1, "state": "active"}]}]}`, "servers[0]: targets[1].address: refused"},
		{"bad weight", `{"servers": [{"host": "a", "serviceName": "s", "targets": [{"address": "10.0.0.1", "weight": 101, "state": "active"}]}]}`, "servers[0]"},
		{"map with a bad address", `{"a": "10.0.0.1", "b": "localhost"}`, `entry "b"`},
		{"map with a number", `{"a": 1}`, `entry "a"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := call(t, "POST", reg.URL+"/api/import", c.body)
			if res := r.Result(t); r.Code != 400 || !strings.Contains(res.Error, c.want) || !strings.Contains(res.Error, "nothing was changed") {
				t.Fatalf("%d %s, want 400 saying %q", r.Code, r.Body, c.want)
			}
			if reg.Store.Current().Revision() != rev || reg.Store.Lineage() != lineage {
				t.Fatal("a refused import changed the table")
			}
		})
	}
	if r := call(t, "GET", reg.URL+"/api/import", ""); r.Code != 405 {
		t.Fatalf("GET /api/import: %d", r.Code)
	}
	if r := call(t, "POST", reg.URL+"/api/export", "{}"); r.Code != 405 {
		t.Fatalf("POST /api/export: %d", r.Code)
	}
}

// Export and import need the token like every other /api/ call.
func TestExportImportNeedToken(t *testing.T) {
	reg := startRegistrar(t, regOptions{token: "s3cret"})
	for _, c := range []struct{ method, path, body string }{{"GET", "/api/export", ""}, {"POST", "/api/import", `{"a": "10.0.0.1"}`}} {
		if r := call(t, c.method, reg.URL+c.path, c.body); r.Code != 401 {
			t.Fatalf("%s %s without the token: %d", c.method, c.path, r.Code)
		}
	}
	if r := call(t, "POST", reg.URL+"/api/import", `{"a": "10.0.0.1"}`, "Authorization", "Bearer s3cret"); r.Code != 200 {
		t.Fatalf("import with the token: %d %s", r.Code, r.Body)
	}
	e, _ := export(t, reg, "Authorization", "Bearer s3cret")
	if len(e.Servers) != 1 || time.Since(e.Servers[0].UpdatedAt) > time.Minute {
		t.Fatalf("export %+v", e)
	}
}

// One import at a time: a second one while the first is still sending its body is
// answered 409 and changes nothing; the first then completes.
func TestImportOneAtATime(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	pr, pw := io.Pipe()
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", reg.URL+"/api/import", pr)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	pw.Write([]byte(`{"web-1": `))
	var r reply
	for range 200 { // the first holds the import once the handler reads its body
		if r = call(t, "POST", reg.URL+"/api/import", `{"web-2": "10.1.2.4"}`); r.Code == 409 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r.Code != 409 || !strings.Contains(r.Result(t).Error, "another import is running") {
		t.Fatalf("second import: %d %s, want 409", r.Code, r.Body)
	}
	pw.Write([]byte(`"10.1.2.3"}`))
	pw.Close()
	if code := <-first; code != 200 {
		t.Fatalf("first import: %d", code)
	}
	if _, ok := reg.Store.Current().Get("web-1"); !ok || reg.Store.Current().Len() != 1 {
		t.Fatalf("after the imports: %d servers", reg.Store.Current().Len())
	}
}
