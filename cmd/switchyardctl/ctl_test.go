package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/internal/registrarapi"
	"switchyard/internal/testkit/apitest"
	"switchyard/internal/testkit/certs"
	"switchyard/internal/testkit/etcdtest"
	"switchyard/internal/testkit/proc"
)

// The commands run in-process (run, as main calls it) against the real registrar
// binary (SWITCHYARD_BIN, `make build`) on 127.0.0.1.

// startRegistrar runs the built registrar over a fresh data file, loopback targets
// allowed.
func startRegistrar(t *testing.T, args ...string) *proc.Proc {
	t.Helper()
	data := filepath.Join(t.TempDir(), "servers.json")
	return proc.StartRegistrar(t, append([]string{"-data", data, "-allow-cidr", "127.0.0.0/8,::1/128"}, args...)...)
}

// result is one run of switchyardctl.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// ctl runs switchyardctl with args and the environment env (KEY=VALUE; nothing else
// of the test's environment is seen).
func ctl(t *testing.T, env []string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string {
		for _, kv := range env {
			if name, v, _ := strings.Cut(kv, "="); name == k {
				return v
			}
		}
		return ""
	}
	code := run(args, strings.NewReader(""), &out, &errb, getenv)
	return result{code, out.String(), errb.String()}
}

// ok runs a command that must succeed against base.
func ok(t *testing.T, base string, args ...string) result {
	t.Helper()
	r := ctl(t, nil, append([]string{"--registrar", base}, args...)...)
	if r.code != 0 {
		t.Fatalf("switchyardctl %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// fails runs a command that must end with code, its stderr matching want.
func fails(t *testing.T, code int, want string, env []string, args ...string) result {
	t.Helper()
	r := ctl(t, env, args...)
	if r.code != code || !regexp.MustCompile(want).MatchString(r.stderr) {
		t.Fatalf("switchyardctl %s: want exit %d and stderr matching %q, got %s", strings.Join(args, " "), code, want, r)
	}
	return r
}

func getServer(t *testing.T, base, name string) registrarapi.Server {
	t.Helper()
	var sv registrarapi.Server
	r := ok(t, base, "servers", "get", name, "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &sv); err != nil {
		t.Fatalf("servers get -o json: %v\n%s", err, r.stdout)
	}
	return sv
}

func listServers(t *testing.T, base string, extra ...string) []registrarapi.Server {
	t.Helper()
	var list []registrarapi.Server
	r := ok(t, base, append([]string{"servers", "list", "-o", "json"}, extra...)...)
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("servers list -o json: %v\n%s", err, r.stdout)
	}
	return list
}

// targets is a server's targets as "address/weight/state" strings.
func targets(sv registrarapi.Server) string {
	var parts []string
	for _, t := range sv.Targets {
		parts = append(parts, fmt.Sprintf("%s/%d/%s", t.Address, t.Weight, t.State))
	}
	return strings.Join(parts, ",")
}

// Every server and target command, each checked by what the registrar then holds.
func TestServersAndTargets(t *testing.T) {
	base := startRegistrar(t).URL()

	ok(t, base, "servers", "set", "web-1", "127.0.0.1:9101,127.0.0.1:9102", "--weight", "90,10", "--service", "shop")
	if got := targets(getServer(t, base, "web-1")); got != "127.0.0.1:9101/90/active,127.0.0.1:9102/10/active" {
		t.Fatalf("after set: %s", got)
	}
	// Without --service an existing server keeps its service name.
	ok(t, base, "servers", "set", "web-1", "127.0.0.1:9101,127.0.0.1:9102", "--weight", "50")
	if sv := getServer(t, base, "web-1"); sv.Service != "shop" || targets(sv) != "127.0.0.1:9101/50/active,127.0.0.1:9102/50/active" {
		t.Fatalf("after set without --service: %+v", sv)
	}
	ok(t, base, "servers", "set", "api", "[::1]:9200", "--service", "api")

	ok(t, base, "targets", "add", "web-1", "127.0.0.1:9103", "--draining", "--weight", "5")
	ok(t, base, "targets", "weight", "web-1", "127.0.0.1:9101", "0")
	ok(t, base, "targets", "drain", "web-1", "127.0.0.1:9102", "--allow-no-active")
	if got := targets(getServer(t, base, "web-1")); got != "127.0.0.1:9101/0/active,127.0.0.1:9102/50/draining,127.0.0.1:9103/5/draining" {
		t.Fatalf("after add, weight, drain: %s", got)
	}
	ok(t, base, "targets", "activate", "web-1", "127.0.0.1:9102")
	ok(t, base, "targets", "remove", "web-1", "127.0.0.1:9101")
	ok(t, base, "targets", "weight", "api", "[::1]:9200", "7") // an IPv6 address, escaped in the path
	if got := targets(getServer(t, base, "api")); got != "[::1]:9200/7/active" {
		t.Fatalf("api after weight: %s", got)
	}

	// Blue/green: one write swaps active and draining, weights kept.
	r := ok(t, base, "switch", "web-1")
	if !strings.Contains(r.stdout, "web-1 changed at revision") {
		t.Fatalf("switch printed %q", r.stdout)
	}
	if got := targets(getServer(t, base, "web-1")); got != "127.0.0.1:9102/50/draining,127.0.0.1:9103/5/active" {
		t.Fatalf("after switch: %s", got)
	}
	ok(t, base, "switch", "web-1")
	if got := targets(getServer(t, base, "web-1")); got != "127.0.0.1:9102/50/active,127.0.0.1:9103/5/draining" {
		t.Fatalf("after switching back: %s", got)
	}
	fails(t, exitRefused, `api has no draining target .* to switch to`, nil, "--registrar", base, "switch", "api")

	// The table: aligned columns, one line per server, in name order.
	r = ok(t, base, "servers", "list")
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "api ") || !strings.HasPrefix(lines[2], "web-1 ") {
		t.Fatalf("servers list:\n%s", r.stdout)
	}
	col := strings.Index(lines[0], "SERVICE")
	for _, l := range lines[1:] {
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Fatalf("servers list: columns not aligned at %d:\n%s", col, r.stdout)
		}
	}
	// YAML carries the same servers as JSON.
	r = ok(t, base, "servers", "list", "-o", "yaml")
	if !strings.Contains(r.stdout, "host: web-1") || !strings.Contains(r.stdout, "address: 127.0.0.1:9103") {
		t.Fatalf("servers list -o yaml:\n%s", r.stdout)
	}

	ok(t, base, "servers", "delete", "api")
	if list := listServers(t, base); len(list) != 1 || list[0].Name != "web-1" {
		t.Fatalf("after delete: %+v", list)
	}
	fails(t, exitRefused, `404 Not Found: server 'api' is not registered`, nil, "--registrar", base, "servers", "get", "api")
}

// Bad input: usage errors (exit 2) send nothing; the registrar's refusals (exit 1)
// carry its own sentence and the HTTP status.
func TestBadInput(t *testing.T) {
	base := startRegistrar(t).URL()
	ok(t, base, "servers", "set", "web-1", "127.0.0.1:9101", "--service", "shop")
	reg := []string{"--registrar", base}
	usage := []struct {
		args []string
		want string
	}{
		{[]string{"servers", "get"}, `accepts 1 arg`},
		{[]string{"servers", "frobnicate"}, `unknown command "frobnicate" for "switchyardctl servers"`},
		{[]string{"targets"}, `targets: give a subcommand: activate, add, drain, remove, weight`},
		{[]string{"nope"}, `unknown command "nope"`},
		{[]string{"servers", "list", "-o", "xml"}, `-o "xml": the output formats are table, json and yaml`},
		{[]string{"servers", "set", "web-2", "127.0.0.1:1"}, `web-2 is not registered yet: give its service name with --service`},
		{[]string{"servers", "set", "web-1", "127.0.0.1:1,127.0.0.1:2", "--weight", "1,2,3"}, `--weight: 3 weights for 2 addresses`},
		{[]string{"servers", "set", "web-1", "127.0.0.1:1,,127.0.0.1:2"}, `an empty address`},
		{[]string{"targets", "weight", "web-1", "127.0.0.1:9101", "heavy"}, `WEIGHT "heavy": a weight is a whole number from 0 to 100`},
		{[]string{"targets", "add", "web-1", "127.0.0.1:9109", "--weight", "101"}, `--weight 101: a weight is 0 to 100`},
		{[]string{"wait"}, `give the revision with --revision N`},
		{[]string{"import", "/nonexistent/table.json"}, `import /nonexistent/table.json: .*no such file`},
		{[]string{"--wait-timeout", "2m", "servers", "list"}, `--wait-timeout 2m0s: must be more than 0 and at most 60s`},
	}
	for _, u := range usage {
		fails(t, exitUsage, u.want, nil, append(reg, u.args...)...)
	}
	fails(t, exitUsage, `--registrar "ftp://x": give the registrar's URL`, nil, "--registrar", "ftp://x", "servers", "list")
	notJSON := filepath.Join(t.TempDir(), "table.json")
	os.WriteFile(notJSON, []byte("web-1 = 127.0.0.1"), 0o600)
	fails(t, exitUsage, `not JSON`, nil, append(reg, "import", notJSON)...)

	refused := []struct {
		args []string
		want string
	}{
		{[]string{"servers", "set", "web-1", "bad..name"}, `PUT /api/servers/web-1: 400 Bad Request: targets\[0\].address: .*empty label`},
		{[]string{"servers", "set", "web-1", "10.9.9.9:80"}, `400 Bad Request: targets\[0\].address: refused`},
		{[]string{"targets", "add", "web-1", "127.0.0.1:9101"}, `409 Conflict: address: '127.0.0.1:9101' is already a target`},
		{[]string{"targets", "drain", "web-1", "127.0.0.1:9101"}, `400 Bad Request: targets: no target is active .*allowNoActive=true.*\(switchyardctl: --allow-no-active\)`},
		{[]string{"targets", "remove", "web-1", "127.0.0.1:9101"}, `is the only target of 'web-1'`},
		{[]string{"targets", "drain", "web-1", "127.0.0.1:9999"}, `404 Not Found: '127.0.0.1:9999' is not a target of 'web-1'`},
		{[]string{"servers", "delete", "nope"}, `404 Not Found: server 'nope' is not registered`},
	}
	for _, u := range refused {
		fails(t, exitRefused, u.want, nil, append(reg, u.args...)...)
	}
	if got := targets(getServer(t, base, "web-1")); got != "127.0.0.1:9101/1/active" {
		t.Fatalf("refused writes changed web-1: %s", got)
	}
}

// The token comes from --token-file or SWITCHYARD_TOKEN and is never printed: not in
// errors, not with -v. Without it or with a wrong one the registrar's 401 is shown
// with what to do.
func TestToken(t *testing.T) {
	const secret = "s3cret-token-0123456789abcdef"
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte(secret+"\n"), 0o400)
	base := startRegistrar(t, "-token-file", tokenFile).URL()

	r := ctl(t, nil, "--registrar", base, "--token-file", tokenFile, "-v", "servers", "set", "web-1", "127.0.0.1:9101", "--service", "shop")
	if r.code != 0 {
		t.Fatal(r)
	}
	r2 := ctl(t, []string{"SWITCHYARD_TOKEN=" + secret}, "--registrar", base, "-v", "servers", "list", "-o", "json")
	if r2.code != 0 || !strings.Contains(r2.stdout, `"web-1"`) {
		t.Fatal(r2)
	}
	fails(t, exitRefused, `GET /api/servers: 401 Unauthorized: authorization required.*--token-file or SWITCHYARD_TOKEN`, nil, "--registrar", base, "servers", "list")
	wrong := filepath.Join(dir, "wrong")
	os.WriteFile(wrong, []byte("not-the-"+secret), 0o400)
	r3 := fails(t, exitRefused, `401 Unauthorized: missing or wrong token`, nil, "--registrar", base, "--token-file", wrong, "-v", "servers", "list")
	r4 := fails(t, exitRefused, `401 Unauthorized`, []string{"SWITCHYARD_TOKEN=wrong-" + secret}, "--registrar", base, "-v", "servers", "get", "web-1")
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o400)
	r5 := fails(t, exitUsage, `--token-file .*empty: the file is empty`, nil, "--registrar", base, "--token-file", empty, "servers", "list")
	fails(t, exitUsage, `--token-file .*missing: no such file`, nil, "--registrar", base, "--token-file", filepath.Join(dir, "missing"), "servers", "list")
	// An unreachable registrar's error with a token set.
	r6 := fails(t, exitUnreachable, `no registrar could be reached`, []string{"SWITCHYARD_TOKEN=" + secret}, "--registrar", "http://127.0.0.1:1", "-v", "servers", "list")
	for i, r := range []result{r, r2, r3, r4, r5, r6} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("run %d printed the token:\n%s", i, r)
		}
	}
	if !strings.Contains(r.stderr, "PUT "+base+"/api/servers/web-1: 200") {
		t.Errorf("-v does not show the request: %s", r.stderr)
	}
}

// freeAddr is a loopback address nothing listens on (a port just released).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// No registrar reachable: exit 3 naming each one tried. Several registrars: the
// first that answers serves the command, given comma-separated, repeated or in
// SWITCHYARD_REGISTRAR.
func TestUnreachableAndFailover(t *testing.T) {
	down1, down2 := freeAddr(t), freeAddr(t)
	fails(t, exitUnreachable, `no registrar could be reached \(`+regexp.QuoteMeta(down1)+`: .*connection refused; `+regexp.QuoteMeta(down2), nil,
		"--registrar", down1+","+down2, "servers", "list")
	fails(t, exitUnreachable, `no registrar could be reached`, []string{"SWITCHYARD_REGISTRAR=" + down1}, "proxies")

	base := startRegistrar(t).URL()
	ok(t, base, "servers", "set", "web-1", "127.0.0.1:9101", "--service", "shop")
	for _, args := range [][]string{
		{"--registrar", down1 + "," + base},
		{"--registrar", down1, "--registrar", down2, "--registrar", base},
	} {
		r := ctl(t, nil, append(args, "servers", "list", "-o", "json")...)
		if r.code != 0 || !strings.Contains(r.stdout, `"web-1"`) {
			t.Fatalf("%v: %s", args, r)
		}
	}
	r := ctl(t, []string{"SWITCHYARD_REGISTRAR=" + down1 + "," + base}, "servers", "set", "web-2", "127.0.0.1:9102", "--service", "shop")
	if r.code != 0 {
		t.Fatal(r)
	}
	if len(listServers(t, base)) != 2 {
		t.Fatal("the write through the second registrar did not land")
	}
}

// Two registrar replicas on one etcd cluster: the commands work through either, and
// with the first replica stopped they fail over to the second, which holds the same
// table. Export and import through etcd too.
func TestEtcdReplicasFailover(t *testing.T) {
	c := etcdtest.Start(t, 1)
	prefix := "/switchyard-ctl/servers/"
	replica := func(name string) *proc.Proc {
		return proc.StartRegistrar(t, "-allow-cidr", "127.0.0.0/8", "-etcd-endpoints", c.EndpointList(),
			"-etcd-prefix", prefix, "-etcd-dial-timeout", "2s", "-replica-name", name)
	}
	a, b := replica("a"), replica("b")
	both := a.URL() + "," + b.URL()
	ok(t, both, "servers", "set", "web-1", "127.0.0.1:9101,127.0.0.1:9102", "--weight", "90,10", "--service", "shop")
	ok(t, both, "targets", "add", "web-1", "127.0.0.1:9103", "--draining")
	ok(t, both, "switch", "web-1")
	export := ok(t, both, "export").stdout
	var e registrarapi.Export
	if err := json.Unmarshal([]byte(export), &e); err != nil || len(e.Servers) != 1 {
		t.Fatalf("export over etcd: %v\n%s", err, export)
	}
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		list := listServers(t, both)
		if len(list) == 1 && targets(list[0]) == "127.0.0.1:9101/90/draining,127.0.0.1:9102/10/draining,127.0.0.1:9103/1/active" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica b through failover: %+v", list)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ok(t, both, "servers", "delete", "web-1")
	in := filepath.Join(t.TempDir(), "export.json")
	os.WriteFile(in, []byte(export), 0o600)
	ok(t, both, "import", in)
	if list := listServers(t, b.URL()); len(list) != 1 || list[0].Name != "web-1" || !list[0].UpdatedAt.Equal(e.Servers[0].UpdatedAt) {
		t.Fatalf("after import over etcd: %+v", list)
	}
}

// export → import into a fresh registrar → the same `servers list`, in both forms
// (the export's, and the seed's map with --map, which keeps first active targets).
func TestExportImportIntoFreshRegistrar(t *testing.T) {
	src := startRegistrar(t).URL()
	ok(t, src, "servers", "set", "web-1", "127.0.0.1:9101,127.0.0.1:9102", "--weight", "90,10", "--service", "shop")
	ok(t, src, "targets", "add", "web-1", "127.0.0.1:9103", "--draining")
	ok(t, src, "servers", "set", "api", "[::1]:9200", "--service", "api")
	ok(t, src, "servers", "set", "dark", "127.0.0.1:9300", "--service", "dark", "--weight", "0", "--allow-no-active")
	dir := t.TempDir()
	file := filepath.Join(dir, "export.json")
	ok(t, src, "export", "--file", file)
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v", fi, err)
	}
	dst := startRegistrar(t).URL()
	r := ok(t, dst, "import", file)
	if !strings.Contains(r.stdout, "imported 3 servers") {
		t.Fatalf("import printed %q", r.stdout)
	}
	want, got := ok(t, src, "servers", "list", "-o", "json").stdout, ok(t, dst, "servers", "list", "-o", "json").stdout
	if want != got {
		t.Fatalf("servers list differs after export/import:\nsource:\n%s\nimported:\n%s", want, got)
	}
	if ok(t, src, "servers", "list").stdout != ok(t, dst, "servers", "list").stdout {
		t.Fatal("the tables differ")
	}

	mapFile := filepath.Join(dir, "map.json")
	ok(t, src, "export", "--map", "--file", mapFile)
	b, _ := os.ReadFile(mapFile)
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil || len(m) != 3 || m["web-1"] != "127.0.0.1:9101" || m["api"] != "[::1]:9200" {
		t.Fatalf("export --map: %v\n%s", err, b)
	}
	fresh := startRegistrar(t).URL()
	ok(t, fresh, "import", mapFile)
	list := listServers(t, fresh)
	if len(list) != 3 || list[2].Name != "web-1" || list[2].Target != "127.0.0.1:9101" || list[2].Service != "imported" {
		t.Fatalf("after importing the map: %+v", list)
	}

	// An import with a bad entry changes nothing and names it.
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"web-9": "127.0.0.1:9109", "bad name": "127.0.0.1:1"}`), 0o600)
	fails(t, exitRefused, `POST /api/import: 400 Bad Request: entry "bad name": host: .*nothing was changed`, nil, "--registrar", fresh, "import", bad)
	if len(listServers(t, fresh)) != 3 {
		t.Fatal("a refused import changed the table")
	}
}

// An export taken while writes go on is the table at one revision: server k is
// registered at revision k, so the export at revision R holds exactly servers 1..R.
func TestExportDuringWritesIsOneRevision(t *testing.T) {
	base := startRegistrar(t).URL()
	const writes = 300
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer done.Store(true)
		c := &http.Client{Timeout: 10 * time.Second}
		for i := 1; i <= writes; i++ {
			resp, err := c.Post(base+"/api/servers/register", "application/json",
				strings.NewReader(apitest.RegBody(fmt.Sprintf("w-%04d", i), "127.0.0.1:9101", "load")))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("register %d: %d", i, resp.StatusCode)
				return
			}
		}
	}()
	exports := 0
	for !done.Load() || exports < 3 {
		var e registrarapi.Export
		r := ok(t, base, "export")
		if err := json.Unmarshal([]byte(r.stdout), &e); err != nil {
			t.Fatal(err)
		}
		if uint64(len(e.Servers)) != e.Revision {
			t.Fatalf("export at revision %d holds %d servers", e.Revision, len(e.Servers))
		}
		for i, sv := range e.Servers {
			if want := fmt.Sprintf("w-%04d", i+1); sv.Name != want {
				t.Fatalf("export at revision %d: server %d is %s, want %s", e.Revision, i, sv.Name, want)
			}
		}
		exports++
		if exports > 10000 {
			t.Fatal("the writes did not finish")
		}
	}
	wg.Wait()
	t.Logf("%d exports taken during %d writes", exports, writes)
}

// proxies and wait follow what proxies applied; a write with --wait-applied exits 4
// when a proxy has not applied it in time. The proxy here is a poller of the real
// sync protocol (v=3 with proxy=), the way the filter polls.
func TestProxiesAndWait(t *testing.T) {
	base := startRegistrar(t).URL()
	ok(t, base, "servers", "set", "web-1", "127.0.0.1:9101", "--service", "shop")
	var lineage string
	poll := func(proxy string, after uint64) {
		t.Helper()
		q := "v=3&proxy=" + proxy + "&cluster=edge"
		if lineage != "" {
			q += fmt.Sprintf("&after=%d&lineage=%s", after, lineage)
		}
		r := apitest.Call(t, "GET", base+"/v1/routes?"+q, "")
		if r.Code != 200 && r.Code != 304 {
			t.Fatalf("poll: %d %s", r.Code, r.Body)
		}
		if r.Code == 200 {
			var a struct{ Lineage string }
			json.Unmarshal(r.Body, &a)
			lineage = a.Lineage
		}
	}
	poll("edge-a", 0)
	poll("edge-a", 1)
	r := ok(t, base, "proxies")
	if !regexp.MustCompile(`(?m)^edge-a\s+edge\s+-\s+current\s+1\s+-\s+`).MatchString(r.stdout) || !strings.Contains(r.stdout, "1 proxies, 1 current, 0 behind, 0 gone") {
		t.Fatalf("proxies:\n%s", r.stdout)
	}
	ok(t, base, "wait", "--revision", "1", "--timeout", "2s")

	// A write the proxy has not applied: --wait-applied exits 4, naming it.
	fails(t, exitTimeout, `written at revision 2, but not applied by every proxy within 500ms: pending: edge-a at revision 1`, nil,
		"--registrar", base, "--wait-applied", "--wait-timeout", "500ms", "servers", "set", "web-1", "127.0.0.1:9102")
	fails(t, exitTimeout, `revision 2 not applied within 300ms: edge-a at revision 1`, nil, "--registrar", base, "wait", "--revision", "2", "--timeout", "300ms")
	var p registrarapi.Result
	if err := json.Unmarshal([]byte(ok(t, base, "proxies", "-o", "json").stdout), &p); err != nil || deref(p.Summary).Behind != 1 {
		t.Fatalf("proxies -o json: %v %+v", err, p)
	}
	poll("edge-a", 2)
	ok(t, base, "wait", "--revision", "2", "--timeout", "2s")
	// A proxy that applies the next write as it comes (a long poll, then a poll that
	// reports it applied): the write with --wait-applied succeeds.
	polled := make(chan error, 1)
	go func() {
		c := &http.Client{Timeout: 20 * time.Second}
		for _, q := range []string{"&after=2&wait=15", "&after=3"} {
			resp, err := c.Get(base + "/v1/routes?v=3&proxy=edge-a&cluster=edge&lineage=" + lineage + q)
			if err != nil {
				polled <- err
				return
			}
			resp.Body.Close()
		}
		polled <- nil
	}()
	r = ok(t, base, "--wait-applied", "servers", "set", "web-1", "127.0.0.1:9101")
	if !strings.Contains(r.stdout, "at revision 3") || !strings.Contains(r.stdout, "applied by 1 proxies") {
		t.Fatalf("a write with --wait-applied printed %q", r.stdout)
	}
	if err := <-polled; err != nil {
		t.Fatal(err)
	}
}

// Shell completion scripts for bash, zsh and fish.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := ctl(t, nil, "completion", sh)
		if r.code != 0 || !strings.Contains(r.stdout, "switchyardctl") || len(r.stdout) < 500 {
			t.Fatalf("completion %s: %s", sh, r)
		}
	}
	base := startRegistrar(t).URL()
	ok(t, base, "servers", "set", "web-1", "127.0.0.1:9101", "--service", "shop")
	r := ctl(t, nil, "__complete", "--registrar", base, "servers", "get", "")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "web-1\n") {
		t.Fatalf("completing a server name: %s", r)
	}
}

// PUT writes the whole server, health check included: set and switch carry the
// server's health check over, so neither turns checking off.
func TestSetAndSwitchKeepTheHealthCheck(t *testing.T) {
	base := startRegistrar(t).URL()
	body := `{"serviceName": "shop", "targets": [{"address": "127.0.0.1:9101"}, {"address": "127.0.0.1:9102", "state": "draining"}],
		"healthCheck": {"path": "/ready", "interval": "1h", "timeout": "1s"}}`
	if r := apitest.Call(t, "PUT", base+"/api/servers/shop", body); r.Code != 200 {
		t.Fatalf("PUT with a health check: %d %s", r.Code, r.Body)
	}
	check := func(when string) {
		t.Helper()
		hc := getServer(t, base, "shop").HealthCheck
		if hc == nil || hc.Path != "/ready" || hc.Interval != "1h0m0s" || hc.Timeout != "1s" {
			t.Fatalf("after %s: health check %+v", when, hc)
		}
	}
	ok(t, base, "switch", "shop")
	check("switch")
	ok(t, base, "servers", "set", "shop", "127.0.0.1:9101,127.0.0.1:9103")
	check("set")
	if r := ok(t, base, "servers", "get", "shop"); !strings.Contains(r.stdout, "GET /ready every 1h0m0s (timeout 1s, up after 2, down after 2)") {
		t.Fatalf("servers get does not show the health check:\n%s", r.stdout)
	}
}

// An https registrar (-tls-cert): trusted with --ca-file; without it the certificate
// is refused like an unreachable registrar, the error saying to give --ca-file.
func TestTLSRegistrar(t *testing.T) {
	dir := t.TempDir()
	ca := certs.NewCA(t, dir, "switchyard-test-ca")
	pair := ca.Server(t, "registrar")
	p := startRegistrar(t, "-tls-cert", pair.CertFile, "-tls-key", pair.KeyFile)
	base := "https://" + p.Addr()
	r := ctl(t, nil, "--registrar", base, "--ca-file", ca.File(), "servers", "set", "web-1", "127.0.0.1:9101", "--service", "shop")
	if r.code != 0 {
		t.Fatal(r)
	}
	r = ctl(t, nil, "--registrar", base, "--ca-file", ca.File(), "servers", "list", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"web-1"`) {
		t.Fatal(r)
	}
	fails(t, exitUnreachable, `x509: .*give its CA with --ca-file`, nil, "--registrar", base, "servers", "list")
	fails(t, exitUsage, `--ca-file .*: no PEM certificate in it`, nil, "--registrar", base, "--ca-file", pair.KeyFile, "servers", "list")
}

// A registrar that answers 503 (a replica whose etcd is down cannot write) passes the
// command on to the next one, and the error names both when none can.
func TestFailoverOn503(t *testing.T) {
	replicaOn := func(c *etcdtest.Cluster) *proc.Proc {
		return proc.StartRegistrar(t, "-allow-cidr", "127.0.0.0/8", "-etcd-endpoints", c.EndpointList(),
			"-etcd-prefix", "/switchyard-ctl/servers/", "-etcd-dial-timeout", "2s")
	}
	c1, c2 := etcdtest.Start(t, 1), etcdtest.Start(t, 1)
	a, b := replicaOn(c1), replicaOn(c2)
	c1.Stop()
	r := ctl(t, nil, "--registrar", a.URL()+","+b.URL(), "-v", "servers", "set", "web-1", "127.0.0.1:9101", "--service", "shop")
	if r.code != 0 || !strings.Contains(r.stderr, "PUT "+a.URL()+"/api/servers/web-1: 503") || !strings.Contains(r.stderr, "PUT "+b.URL()+"/api/servers/web-1: 200") {
		t.Fatalf("a write with the first replica's etcd down: %s", r)
	}
	if list := listServers(t, b.URL()); len(list) != 1 || list[0].Name != "web-1" {
		t.Fatalf("the second replica: %+v", list)
	}
	// The last registrar's 503 is its answer: a refusal (exit 1) with its message.
	fails(t, exitRefused, `PUT /api/servers/web-2: 503 Service Unavailable: `, nil, "--registrar", a.URL(), "servers", "set", "web-2", "127.0.0.1:9102", "--service", "shop")
}
