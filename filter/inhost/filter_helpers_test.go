package inhost

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/internal/contract"
	"switchyard/internal/testkit/bin"
	"switchyard/registrar/server"
	"switchyard/registrar/store"
	"switchyard/wasmhost"
)

// Helpers for this package's tests, which run the real filter.wasm in the wasmhost
// (filter_test.go, sync_v2_test.go, reliability_filter_test.go, the benchmarks).

// fRegistrar is the real registrar (registrar/server over an embedded store in a
// temporary folder) on 127.0.0.1, behind a wrapper that injects faults into its
// /v1/routes answers: mode "500", "garbage", "invalid", "reset" or "hang" replaces the
// answer the registrar gave (checked when it answers, so a long-poll that is waiting
// sees the mode once it ends), "baddelta" makes a delta start one revision early (so
// the sync must refuse it), fault, when set, may answer a poll itself, and pageHook
// runs before each page request (snapshot=) is served.
type fRegistrar struct {
	t   testing.TB
	srv *httptest.Server
	cfg server.Config

	mu       sync.Mutex
	server   *server.Server
	mode     string
	changed  chan struct{} // closed and replaced on every mode change, to free hanging polls
	polls    int
	lastReq  *http.Request
	queries  []url.Values
	fault    func(w http.ResponseWriter, r *http.Request) bool // true: the poll was answered
	pageHook func(start string)
	// Polls per proxy= (each router VM of the router-only tests has its own proxy_id),
	// and how many were being served at once (now and at most).
	byProxy               map[string]int
	inFlight, maxInFlight int
}

func newFRegistrar(t testing.TB, routes map[string]string) *fRegistrar {
	t.Helper()
	return newFRegistrarWith(t, server.Config{}, routes)
}

// newFRegistrarWith starts the registrar with cfg (its store is opened here), e.g. a
// small History or PageBytes.
func newFRegistrarWith(t testing.TB, cfg server.Config, routes map[string]string) *fRegistrar {
	t.Helper()
	r := &fRegistrar{t: t, cfg: cfg, changed: make(chan struct{})}
	r.server = r.start(routes)
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.setMode("") // free hanging polls
		r.mu.Lock()
		s := r.server
		r.mu.Unlock()
		s.Close() // answers waiting long-polls at once
		r.srv.CloseClientConnections()
		r.srv.Close()
	})
	return r
}

// storeServer is the registered server whose target set is set (a target-set string,
// internal/contract: a plain address or the '*' form).
func storeServer(name, set string) *store.Server {
	if set == "" || set[0] != contract.TargetSetMarker {
		return &store.Server{Name: name, Target: set, Service: "test"}
	}
	var ts []store.Target
	r := contract.ReadTargets(set)
	for t, ok := r.Next(); ok; t, ok = r.Next() {
		state := store.StateActive
		if t.Draining {
			state = store.StateDraining
		}
		ts = append(ts, store.Target{Address: t.Address, Weight: t.Weight, State: state, Down: t.Down})
	}
	sv := store.NewServer(name, "test", ts)
	return &sv
}

// start opens a registrar on a new data file holding routes (name → target-set
// string), as the registrar command does (the store opened with server.StoreOptions,
// handed to server.New); the test's cleanup closes the store.
func (r *fRegistrar) start(routes map[string]string) *server.Server {
	r.t.Helper()
	m := server.NewMetrics()
	st, err := store.Open(filepath.Join(r.t.TempDir(), "servers.json"), store.EmbeddedOptions{Options: server.StoreOptions(r.cfg, nil, m)})
	if err != nil {
		r.t.Fatalf("opening the registrar's store: %v", err)
	}
	r.t.Cleanup(func() { st.Close() })
	s, err := server.New(r.cfg, st, m)
	if err != nil {
		r.t.Fatalf("starting the registrar: %v", err)
	}
	if len(routes) > 0 {
		// One write, as -import does: a table of 100,000 names costs one fsync.
		changes := make([]store.Change, 0, len(routes))
		for name, set := range routes {
			changes = append(changes, store.Change{Name: name, Server: storeServer(name, set)})
		}
		if out := s.Store().Write(changes...); out.Err != nil {
			r.t.Fatalf("loading %d routes into the registrar: %v", len(routes), out.Err)
		}
	}
	return s
}

// replace gives the registrar a new history, as when its data file is deleted and
// started anew or an older backup is restored: a new data file (so a new lineage)
// holding routes at revision 1. The old registrar answers its waiting polls and stops.
func (r *fRegistrar) replace(routes map[string]string) {
	s := r.start(routes)
	r.mu.Lock()
	old := r.server
	r.server = s
	r.mu.Unlock()
	old.Close()
	old.Store().Close()
}

func (r *fRegistrar) url() string { return r.srv.URL }

func (r *fRegistrar) handler() http.Handler {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.server.Handler()
}

// lineage is the registrar's current lineage.
func (r *fRegistrar) lineage() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.server.Store().Lineage()
}

func (r *fRegistrar) setMode(m string) {
	r.mu.Lock()
	r.mode = m
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *fRegistrar) setPageHook(h func(start string)) {
	r.mu.Lock()
	r.pageHook = h
	r.mu.Unlock()
}

func (r *fRegistrar) stats() (polls int, last *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.polls, r.lastReq
}

// pollers gives the polls per proxy= so far and the most served at once, and resets
// both.
func (r *fRegistrar) pollers() (byProxy map[string]int, maxInFlight int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	byProxy, maxInFlight = r.byProxy, r.maxInFlight
	r.byProxy, r.maxInFlight = nil, r.inFlight
	return byProxy, maxInFlight
}

// byProxyNow is a copy of the polls per proxy= since the last pollers().
func (r *fRegistrar) byProxyNow() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.byProxy)
}

// seen gives the queries of every poll so far.
func (r *fRegistrar) seen() []url.Values {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]url.Values(nil), r.queries...)
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

// putStore is put straight into the registrar's store (no API checks): for tests
// that make thousands of changes.
func (r *fRegistrar) putStore(name, target string) uint64 {
	r.mu.Lock()
	st := r.server.Store()
	r.mu.Unlock()
	c := store.Change{Name: name}
	if target != "" {
		c.Server = &store.Server{Name: name, Target: target, Service: "test"}
	}
	out := st.Write(c)
	if out.Err != nil {
		r.t.Errorf("writing %s: %v", name, out.Err)
	}
	return out.Revision
}

func (r *fRegistrar) serve(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/v1/routes" {
		r.handler().ServeHTTP(w, req)
		return
	}
	r.mu.Lock()
	r.polls++
	r.lastReq = req
	r.queries = append(r.queries, req.URL.Query())
	fault, hook := r.fault, r.pageHook
	if r.byProxy == nil {
		r.byProxy = map[string]int{}
	}
	r.byProxy[req.URL.Query().Get("proxy")]++
	r.inFlight++
	r.maxInFlight = max(r.maxInFlight, r.inFlight)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
	}()
	if fault != nil && fault(w, req) {
		return
	}
	if hook != nil && req.URL.Query().Has("snapshot") {
		hook(req.URL.Query().Get("start"))
	}
	rec := httptest.NewRecorder()
	r.handler().ServeHTTP(rec, req)
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
		body := rec.Body.Bytes()
		if mode == "baddelta" && bytes.Contains(body, []byte(`"kind":"delta"`)) {
			var d map[string]any
			json.Unmarshal(body, &d)
			d["from"] = d["from"].(float64) - 1
			body, _ = json.Marshal(d)
			rec.Header().Del("Content-Length")
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(body)
	}
}

// resetConn closes the connection with a TCP RST.
func resetConn(w http.ResponseWriter) {
	if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
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

// fEnv is a host with the real filter.wasm loaded and the real registrar (wrapped to
// inject faults) behind the cluster "registrar".
type fEnv struct {
	t   testing.TB
	h   *wasmhost.Host
	reg *fRegistrar
	mod *wasmhost.Module
}

func newFEnv(t testing.TB, opts wasmhost.Options, routes map[string]string) *fEnv {
	t.Helper()
	reg := newFRegistrar(t, routes)
	e := newFEnvAt(t, opts, reg.url())
	e.reg = reg
	return e
}

// newFEnvWith is newFEnv with the registrar started with cfg (e.g. a small History or
// PageBytes).
func newFEnvWith(t testing.TB, opts wasmhost.Options, cfg server.Config, routes map[string]string) *fEnv {
	t.Helper()
	reg := newFRegistrarWith(t, cfg, routes)
	e := newFEnvAt(t, opts, reg.url())
	e.reg = reg
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
	m, err := h.Load(context.Background(), bin.Read(t, "filter.wasm"))
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
