package inhost

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/internal/testbin"
	"switchyard/registrar/server"
	"switchyard/registrar/store"
	"switchyard/wasmhost"
)

// Helpers for the tests that run the real filter.wasm in the wasmhost
// (filter_e2e_test.go). Names start with "f" or "filter" to stay clear of the
// process-level helpers in procs_test.go.

// fRegistrar is the real registrar (registrar/server over an embedded store in a
// temporary folder) on 127.0.0.1, behind a wrapper that injects faults into its
// /v1/routes answers: mode "500", "garbage", "invalid", "reset" or "hang" replaces the
// answer the registrar gave (checked when it answers, so a long-poll that is waiting
// sees the mode once it ends), and fault, when set, may answer a poll itself.
type fRegistrar struct {
	t      testing.TB
	srv    *httptest.Server
	server *server.Server

	mu      sync.Mutex
	mode    string
	changed chan struct{} // closed and replaced on every mode change, to free hanging polls
	polls   int
	lastReq *http.Request
	fault   func(w http.ResponseWriter, r *http.Request) bool // true: the poll was answered
}

func newFRegistrar(t testing.TB, routes map[string]string) *fRegistrar {
	t.Helper()
	s, err := server.New(server.Config{Data: filepath.Join(t.TempDir(), "servers.json")})
	if err != nil {
		t.Fatalf("starting the registrar: %v", err)
	}
	if len(routes) > 0 {
		// One write, as -import does: a table of 100,000 names costs one fsync.
		changes := make([]store.Change, 0, len(routes))
		for name, target := range routes {
			changes = append(changes, store.Change{Host: name, Server: &store.Server{Host: name, IPAddress: target, ServiceName: "test"}})
		}
		if out := s.Store().Write(changes...); out.Err != nil {
			t.Fatalf("loading %d routes into the registrar: %v", len(routes), out.Err)
		}
	}
	r := &fRegistrar{t: t, server: s, changed: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.setMode("")    // free hanging polls
		r.server.Close() // answers waiting long-polls at once
		r.srv.CloseClientConnections()
		r.srv.Close()
	})
	return r
}

func (r *fRegistrar) url() string { return r.srv.URL }

func (r *fRegistrar) setMode(m string) {
	r.mu.Lock()
	r.mode = m
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *fRegistrar) stats() (polls int, last *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.polls, r.lastReq
}

// put registers (or changes; target "" removes) a name through the registrar's API
// and gives the write's revision.
func (r *fRegistrar) put(name, target string) uint64 {
	method, body := http.MethodPut, `{"ipAddress":"`+target+`","serviceName":"test"}`
	if target == "" {
		method, body = http.MethodDelete, ""
	}
	req, _ := http.NewRequest(method, r.srv.URL+"/api/servers/"+name, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Errorf("%s %s: %v", method, name, err)
		return 0
	}
	defer resp.Body.Close()
	var out struct {
		Result struct {
			Revision uint64
			Error    string
		}
	}
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusOK {
		r.t.Errorf("%s %s → %s: %s", method, name, resp.Status, out.Result.Error)
	}
	return out.Result.Revision
}

func (r *fRegistrar) serve(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/v1/routes" {
		r.server.Handler().ServeHTTP(w, req)
		return
	}
	r.mu.Lock()
	r.polls++
	r.lastReq = req
	fault := r.fault
	r.mu.Unlock()
	if fault != nil && fault(w, req) {
		return
	}
	rec := httptest.NewRecorder()
	r.server.Handler().ServeHTTP(rec, req)
	var mode string
	for {
		r.mu.Lock()
		mode, ch := r.mode, r.changed
		r.mu.Unlock()
		if mode != "hang" {
			break
		}
		select { // no answer: hang until the mode changes or the poll is cut off
		case <-ch:
		case <-req.Context().Done():
			return
		}
	}
	r.mu.Lock()
	mode = r.mode
	r.mu.Unlock()
	switch mode {
	case "500":
		http.Error(w, "database is locked", http.StatusInternalServerError)
	case "garbage":
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"revision": 9999, "routes": {"web-1": "10.9.9.9"`)) // cut short
	case "invalid":
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"revision": 9999, "routes": {"web-1": "10.9.9.9", "bad name": "10.9.9.10"}}`))
	case "reset":
		resetConn(w)
	default:
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}
}

// resetConn closes the connection with a TCP RST.
func resetConn(w http.ResponseWriter) {
	if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
}

// v2Registrar is a test double of the registrar's /v1/routes on 127.0.0.1 that speaks
// both versions of docs/sync-protocol.md. It stands in for the real registrar only in
// the version-2 tests, until the registrar on main serves version 2; every other test
// runs against the real registrar (fRegistrar).
//
//   - version 1 (no v=2): 200 with the whole table as soon as its revision is past
//     ?after (at once without after), else 304 after ?wait seconds;
//   - version 2: as soon as the proxy's (after, lineage) differs from the registrar's,
//     a delta when the retained history covers it (compacted: the latest state of each
//     name changed since after) and it has at most pageNames entries, else a full
//     table in pages of pageNames names (0: one page) from a snapshot kept for paging;
//     snapshot=R&start=K serves a page of snapshot R, 410 snapshot_gone when it is not
//     kept.
//
// Its mode turns it into the faults the sync must survive.
type v2Registrar struct {
	t   testing.TB
	srv *httptest.Server

	mu        sync.Mutex
	revision  uint64
	lineage   string
	routes    map[string]string
	history   []fChange // changes after oldest, in order
	oldest    uint64    // history holds every change after this revision
	retain    int       // changes kept in history (0: all)
	pageNames int       // names per page and largest delta (0: unbounded)
	snapshots map[uint64]map[string]string
	pageHook  func(start string) // called (unlocked) before a page request is served
	mode      string             // "", "500", "garbage", "invalid", "reset", "hang", "baddelta"
	changed   chan struct{}      // closed and replaced on every change, to wake waiting polls
	polls     int
	lastReq   *http.Request
	queries   []url.Values
}

type fChange struct {
	revision     uint64
	name, target string // target "" = removed
}

func newV2Registrar(t testing.TB, routes map[string]string) *v2Registrar {
	r := &v2Registrar{t: t, revision: 1, lineage: "lineage-1", routes: routes, oldest: 1,
		snapshots: map[uint64]map[string]string{}, changed: make(chan struct{})}
	if r.routes == nil {
		r.routes = map[string]string{}
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.set(func() { r.mode = "" }) // release waiting polls before Close waits for them
		r.srv.CloseClientConnections()
		r.srv.Close()
	})
	return r
}

func (r *v2Registrar) url() string { return r.srv.URL }

// set changes the registrar under its lock and wakes every waiting poll.
func (r *v2Registrar) set(f func()) {
	r.mu.Lock()
	f()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// put registers (or changes, with target "" removes) a name as a new revision.
func (r *v2Registrar) put(name, target string) uint64 {
	var rev uint64
	r.set(func() {
		if target == "" {
			delete(r.routes, name)
		} else {
			r.routes[name] = target
		}
		r.revision++
		rev = r.revision
		r.history = append(r.history, fChange{rev, name, target})
		if r.retain > 0 && len(r.history) > r.retain {
			drop := len(r.history) - r.retain
			r.oldest = r.history[drop-1].revision
			r.history = append([]fChange(nil), r.history[drop:]...)
		}
	})
	return rev
}

// replace starts a new history (a data file deleted and started anew, a backup
// restored): a new lineage, revision 1, routes, no retained changes.
func (r *v2Registrar) replace(lineage string, routes map[string]string) {
	r.set(func() {
		r.lineage, r.revision, r.routes, r.history, r.oldest = lineage, 1, routes, nil, 1
		r.snapshots = map[uint64]map[string]string{}
	})
}

func (r *v2Registrar) setMode(m string) { r.set(func() { r.mode = m }) }

func (r *v2Registrar) stats() (polls int, last *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.polls, r.lastReq
}

// seen gives the queries of every poll so far.
func (r *v2Registrar) seen() []url.Values {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]url.Values(nil), r.queries...)
}

func (r *v2Registrar) serve(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	v2 := q.Get("v") == "2"
	after, hasAfter := uint64(0), q.Has("after")
	if hasAfter {
		after, _ = strconv.ParseUint(q.Get("after"), 10, 64)
	}
	if v2 && q.Has("snapshot") {
		if r.pageHook != nil {
			r.pageHook(q.Get("start"))
		}
	}
	wait, _ := strconv.Atoi(q.Get("wait"))
	deadline := time.After(time.Duration(wait) * time.Second)
	r.mu.Lock()
	r.polls++
	r.lastReq = req
	r.queries = append(r.queries, q)
	for {
		if r.mode != "" && r.mode != "hang" && r.mode != "baddelta" {
			break
		}
		if v2 && q.Has("snapshot") && r.mode != "hang" {
			break
		}
		current := hasAfter && r.revision == after && (!v2 || q.Get("lineage") == r.lineage)
		if !v2 && hasAfter && r.revision <= after {
			current = true // version 1 as first served: wait while not newer
		}
		if r.mode != "hang" && !current {
			break
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			r.mu.Lock()
			if r.mode == "hang" {
				deadline = nil // no 304: hang until the mode changes or the poll is cut off
				continue
			}
			r.mu.Unlock()
			w.WriteHeader(http.StatusNotModified)
			return
		case <-req.Context().Done():
			return
		}
		r.mu.Lock()
	}
	mode := r.mode
	var body []byte
	status := http.StatusOK
	switch {
	case !v2:
		body, _ = json.Marshal(map[string]any{"revision": r.revision, "routes": r.routes})
	case q.Has("snapshot"):
		rev, _ := strconv.ParseUint(q.Get("snapshot"), 10, 64)
		if snap, ok := r.snapshots[rev]; ok {
			body = r.page(rev, snap, q.Get("start"))
		} else {
			status, body = http.StatusGone, []byte(`{"error":"snapshot_gone","message":"revision `+strconv.FormatUint(rev, 10)+` is no longer kept; ask for a full table again"}`)
		}
	default:
		body = r.deltaOrFull(hasAfter, after, q.Get("lineage"), mode == "baddelta")
	}
	r.mu.Unlock()
	switch mode {
	case "500":
		http.Error(w, "database is locked", http.StatusInternalServerError)
	case "garbage":
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"revision": 9999, "routes": {"web-1": "10.9.9.9"`)) // cut short
	case "invalid":
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"revision": 9999, "routes": {"web-1": "10.9.9.9", "bad name": "10.9.9.10"}}`))
	case "reset":
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
		}
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
	}
}

// deltaOrFull answers a version-2 poll (under r.mu). bad makes a delta that does not
// start at after, which the sync must refuse.
func (r *v2Registrar) deltaOrFull(hasAfter bool, after uint64, lineage string, bad bool) []byte {
	last := r.oldest
	if n := len(r.history); n > 0 {
		last = r.history[n-1].revision
	}
	if hasAfter && lineage == r.lineage && after >= r.oldest && after < r.revision && last == r.revision {
		latest := map[string]string{}
		for _, c := range r.history {
			if c.revision > after {
				latest[c.name] = c.target
			}
		}
		if r.pageNames == 0 || len(latest) <= r.pageNames {
			ups, rms := map[string]string{}, []string{}
			for n, t := range latest {
				if t == "" {
					rms = append(rms, n)
				} else {
					ups[n] = t
				}
			}
			from := after
			if bad {
				from = after - 1
			}
			b, _ := json.Marshal(map[string]any{"kind": "delta", "lineage": r.lineage, "from": from,
				"revision": r.revision, "upserts": ups, "removals": rms})
			return b
		}
	}
	snap := make(map[string]string, len(r.routes))
	for n, t := range r.routes {
		snap[n] = t
	}
	r.snapshots[r.revision] = snap
	return r.page(r.revision, snap, "")
}

// page gives the page of snap (at rev) that starts at start.
func (r *v2Registrar) page(rev uint64, snap map[string]string, start string) []byte {
	names := make([]string, 0, len(snap))
	for n := range snap {
		if n >= start {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	next := ""
	if r.pageNames > 0 && len(names) > r.pageNames {
		next = names[r.pageNames]
		names = names[:r.pageNames]
	}
	// encoding/json sorts map keys, which is the byte order a page needs.
	routes := make(map[string]string, len(names))
	for _, n := range names {
		routes[n] = snap[n]
	}
	m := map[string]any{"kind": "full", "lineage": r.lineage, "revision": rev, "routes": routes}
	if next != "" {
		m["next"] = next
	}
	b, _ := json.Marshal(m)
	return b
}

// filterConfig is the plugin configuration used by these tests: a short long-poll
// wait so that a test never waits long for a 304.
func filterConfig(extra string) []byte {
	c := `{"default_port": 8080, "registrar": {"wait_seconds": 1}`
	if extra != "" {
		c += ", " + extra
	}
	return []byte(c + "}")
}

// fEnv is a host with the real filter.wasm loaded and a registrar behind the cluster
// "registrar": the real one (reg), or the version-2 double (v2).
type fEnv struct {
	t   testing.TB
	h   *wasmhost.Host
	reg *fRegistrar
	v2  *v2Registrar
	mod *wasmhost.Module
}

func newFEnv(t testing.TB, opts wasmhost.Options, routes map[string]string) *fEnv {
	t.Helper()
	reg := newFRegistrar(t, routes)
	e := newFEnvAt(t, opts, reg.url())
	e.reg = reg
	return e
}

// newFEnvV2 is newFEnv with the version-2 double as the registrar.
func newFEnvV2(t testing.TB, opts wasmhost.Options, routes map[string]string) *fEnv {
	t.Helper()
	reg := newV2Registrar(t, routes)
	e := newFEnvAt(t, opts, reg.url())
	e.v2 = reg
	return e
}

func newFEnvAt(t testing.TB, opts wasmhost.Options, registrarURL string) *fEnv {
	t.Helper()
	if opts.Clusters == nil {
		opts.Clusters = map[string]string{}
	}
	opts.Clusters["registrar"] = registrarURL
	h := wasmhost.New(opts)
	t.Cleanup(func() { h.Close() })
	m, err := h.Load(context.Background(), testbin.Read(t, "filter.wasm"))
	if err != nil {
		t.Fatalf("loading filter.wasm: %v", err)
	}
	return &fEnv{t: t, h: h, mod: m}
}

// vm starts one root ("sync" or "router") of the filter with vm_id "switchyard".
func (e *fEnv) vm(root string, cfg []byte) *wasmhost.VM {
	e.t.Helper()
	return e.vmWith(wasmhost.PluginConfig{Name: "switchyard", RootID: root, VMID: "switchyard", Configuration: cfg})
}

func (e *fEnv) vmWith(pc wasmhost.PluginConfig) *wasmhost.VM {
	e.t.Helper()
	vm, err := e.mod.NewVM(context.Background(), pc)
	if err != nil {
		e.t.Fatalf("starting the %q root: %v\nlogs:\n%s", pc.RootID, err, e.logText())
	}
	e.t.Cleanup(func() { vm.Close() })
	return vm
}

func (e *fEnv) logText() string {
	var b strings.Builder
	for _, l := range e.h.Logs() {
		b.WriteString(l.RootID + ": " + l.Message + "\n")
	}
	return b.String()
}

// waitLog waits (bounded) for a log line containing substr.
func (e *fEnv) waitLog(substr string, within time.Duration) wasmhost.LogEntry {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	l, err := e.h.WaitLog(ctx, substr)
	if err != nil {
		e.t.Fatalf("no log line with %q within %v: %v\nlogs:\n%s", substr, within, err, e.logText())
	}
	return l
}

// countLogs counts the log lines containing substr.
func (e *fEnv) countLogs(substr string) int {
	n := 0
	for _, l := range e.h.Logs() {
		if strings.Contains(l.Message, substr) {
			n++
		}
	}
	return n
}

func (e *fEnv) metric(name string) int64 {
	v, _ := e.h.Metric(name)
	return v
}

// fResult is what one request through a router VM came to.
type fResult struct {
	action  wasmhost.Action
	local   *wasmhost.LocalResponse
	headers wasmhost.Headers // request headers after the filter
}

func (r fResult) status() int {
	if r.local == nil {
		return 0
	}
	return r.local.Status
}

func (r fResult) errorCode() string {
	if r.local == nil {
		return ""
	}
	var v struct{ Error string }
	json.Unmarshal(r.local.Body, &v)
	return v.Error
}

func (r fResult) header(k string) string { v, _ := r.headers.Get(k); return v }

// fRequest runs one GET through a router VM; name "" sends no server-name header.
func fRequest(t testing.TB, vm *wasmhost.VM, path, name string) fResult {
	t.Helper()
	h := wasmhost.Headers{{":method", "GET"}, {":path", path}, {":authority", "proxy.example:8443"}, {":scheme", "http"}}
	if name != "" {
		h = append(h, [2]string{"x-server-name", name})
	}
	return fRequestHeaders(t, vm, h)
}

func fRequestHeaders(t testing.TB, vm *wasmhost.VM, h wasmhost.Headers) fResult {
	t.Helper()
	s, err := vm.NewStream(wasmhost.StreamAttributes{})
	if err != nil {
		t.Fatalf("NewStream: %v", err)
	}
	act, err := s.RequestHeaders(h, true)
	if err != nil {
		t.Fatalf("RequestHeaders: %v", err)
	}
	r := fResult{action: act, local: s.LocalResponse(), headers: s.RequestHeaderMap()}
	if err := s.Close(); err != nil {
		t.Fatalf("closing the stream: %v", err)
	}
	return r
}

// waitRouted polls (bounded) until name routes to authority through vm ("" = until
// it answers 404), which is how a test sees a sync reach the routers.
func waitRouted(t testing.TB, vm *wasmhost.VM, name, authority string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := fRequest(t, vm, "/sys/x", name)
		if authority == "" && r.status() == 404 || authority != "" && r.local == nil && r.header(":authority") == authority {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not route to %q within %v: status %d %q authority %q", name, authority, within, r.status(), r.errorCode(), r.header(":authority"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
