package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testkit/etcdtest"
	"switchyard/internal/testkit/logbuf"
	"switchyard/internal/testkit/wait"
	"switchyard/registrar/store"
	"switchyard/registrar/store/etcdstore"
)

// serveStore starts the real server over st (opened with StoreOptions(cfg, log, m)) on
// 127.0.0.1; it returns its URL.
func serveStore(t *testing.T, cfg Config, st store.Store, m *Metrics, log *slog.Logger) string {
	t.Helper()
	s, err := New(cfg, st, m, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		st.Close()
	})
	return serve(t, s)
}

// Targets the policy refuses that reached the data another way than the API (a data
// file entry, a log record) are not served: skipped, counted, logged by name.
func TestStoredTargetsRefusedByPolicyEmbedded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "servers.json")
	if err := os.WriteFile(path, []byte(`{"revision": 1, "lineage": "0123456789abcdef0123456789abcdef", "servers": [
{"host": "meta-file", "ipAddress": "169.254.169.254", "serviceName": "x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(path, store.EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"web-ok": "10.1.2.3:8080", "meta-log": "169.254.169.254:80", "loop-log": "127.0.0.1:9000"} {
		if out := st.Write(store.Change{Name: name, Server: &store.Server{Target: target, Service: "x"}}); out.Err != nil {
			t.Fatal(out.Err)
		}
	}
	set := store.NewServer("meta-set", "x", []store.Target{{Address: "10.1.2.5", Weight: 1, State: store.StateActive}, {Address: "169.254.169.254", Weight: 1, State: store.StateDraining}})
	if out := st.Write(store.Change{Name: "meta-set", Server: &set}); out.Err != nil {
		t.Fatal(out.Err)
	}
	st.Close()
	var logs logbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	m := NewMetrics()
	st2, err := store.Open(path, store.EmbeddedOptions{Options: StoreOptions(Config{}, log, m)})
	if err != nil {
		t.Fatal(err)
	}
	url := serveStore(t, Config{}, st2, m, log)
	b := call(t, "GET", url+"/v1/routes", "").Routes(t)
	if len(b.Routes) != 1 || b.Routes["web-ok"] != "10.1.2.3:8080" {
		t.Fatalf("served %v, want only web-ok", b.Routes)
	}
	if m := string(call(t, "GET", url+"/metrics", "").Body); !strings.Contains(m, "registrar_stored_targets_refused 4") {
		t.Errorf("/metrics does not count the 4 refused servers")
	}
	for _, name := range []string{"meta-file", "meta-log", "loop-log", "meta-set"} {
		if !strings.Contains(logs.String(), "host="+name) {
			t.Errorf("the refused %s is not logged:\n%s", name, logs.String())
		}
	}
}

// The same for a key written into etcd directly, at start and while running.
func TestStoredTargetsRefusedByPolicyEtcd(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	prefix := "/t/servers/"
	put := func(name, target string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := cli.Put(ctx, prefix+name, `{"host":"`+name+`","ipAddress":"`+target+`","serviceName":"x","updatedAt":"2026-01-01T00:00:00Z"}`); err != nil {
			t.Fatal(err)
		}
	}
	put("web-ok", "10.1.2.3:8080")
	put("meta-start", "169.254.169.254")
	var logs logbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	m := NewMetrics()
	st, err := etcdstore.Open(context.Background(), etcdstore.Options{Options: StoreOptions(Config{}, log, m), Endpoints: c.Endpoints(), Prefix: prefix, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	url := serveStore(t, Config{}, st, m, log)
	put("meta-later", "[fd00:ec2::254]")
	put("web-later", "10.1.2.4")
	wait.Eventually(t, 5*time.Second, func() string {
		b := call(t, "GET", url+"/v1/routes", "").Routes(t)
		if len(b.Routes) != 2 || b.Routes["web-ok"] == "" || b.Routes["web-later"] == "" {
			return "served " + strings.Join(keys(b.Routes), ",") + ", want web-ok and web-later only"
		}
		return ""
	})
	if m := string(call(t, "GET", url+"/metrics", "").Body); !strings.Contains(m, "registrar_etcd_invalid_keys 2") {
		t.Errorf("/metrics does not count the 2 refused keys")
	}
	for _, name := range []string{"meta-start", "meta-later"} {
		if !strings.Contains(logs.String(), prefix+name) || !strings.Contains(logs.String(), "refused") {
			t.Errorf("the refused %s is not logged:\n%s", name, logs.String())
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// POST /api/import over the etcd store: the table is replaced in one transaction under
// a new lineage, and GET /api/export gives it back.
func TestImportEtcd(t *testing.T) {
	c := etcdtest.Start(t, 1)
	log := slog.New(slog.DiscardHandler)
	m := NewMetrics()
	st, err := etcdstore.Open(context.Background(), etcdstore.Options{Options: StoreOptions(Config{}, log, m), Endpoints: c.Endpoints(), Prefix: "/t/servers/", DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	url := serveStore(t, Config{}, st, m, log)
	register(t, url, "web-1", "10.1.2.3", "logs")
	register(t, url, "web-2", "10.1.2.4", "logs")
	old := st.Lineage()
	if r := call(t, "POST", url+"/api/import", `{"servers": [{"host": "web-2", "ipAddress": "10.1.2.4", "serviceName": "logs"}, {"host": "web-3", "ipAddress": "10.1.2.5", "serviceName": "new"}]}`); r.Code != 200 {
		t.Fatalf("import: %d %s", r.Code, r.Body)
	}
	e, _ := export(t, &testRegistrar{URL: url})
	if e.Lineage == old || e.Lineage != st.Lineage() || len(e.Servers) != 2 || e.Servers[0].Name != "web-2" || e.Servers[1].Service != "new" {
		t.Fatalf("export after the import: %+v (old lineage %s)", e, old)
	}
}
