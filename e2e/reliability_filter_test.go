package e2e

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/e2e/devproxy"
	"switchyard/e2e/host"
	"switchyard/internal/testbin"
)

// Reliability of the filter side (issue #8): what the sync and the routers do when
// the registrar, the sync VM or a router VM fails. Each test states the promise it
// checks; all of them use the real filter.wasm (or, for a trap, a guest that traps on
// purpose) and real HTTP on loopback.

// TestReliabilityRestartedSyncForgetsRemovedNames: when only the sync VM is replaced
// (the router VMs keep the vm_id's shared data alive), a name removed from the
// registrar while no sync ran stops routing once the new sync is up. The new sync
// learns what shared data holds from the index of names the old one kept.
func TestReliabilityRestartedSyncForgetsRemovedNames(t *testing.T) {
	e := newFEnv(t, host.Options{}, map[string]string{"a": "10.0.0.1", "b": "10.0.0.2"})
	syncA := e.vm("sync", filterConfig(""))
	r := e.vm("router", filterConfig(""))
	e.waitLog("sync: table at revision 1", syncWithin)
	waitRouted(t, r, "b", "10.0.0.2:8080", time.Second)

	if err := syncA.Close(); err != nil {
		t.Fatalf("closing sync VM A: %v", err)
	}
	e.reg.put("b", "")         // revision 2: b removed while no sync runs
	e.reg.put("c", "10.0.0.3") // revision 3: and c added
	if got := fRequest(t, r, "/sys/x", "b"); got.header(":authority") != "10.0.0.2:8080" {
		t.Fatalf("with no sync running, b should still route from shared data; got %d %q", got.status(), got.header(":authority"))
	}

	e.vm("sync", filterConfig("")) // sync VM B, same vm_id
	e.waitLog("sync: resuming the table already in shared data at revision 1 (2 servers)", syncWithin)
	waitRouted(t, r, "b", "", syncWithin)
	waitRouted(t, r, "c", "10.0.0.3:8080", time.Second)
	waitRouted(t, r, "a", "10.0.0.1:8080", time.Second)
	// B's first poll asked for what is newer than the table it found (after=1), and
	// its table write emptied b: one removed, one added.
	e.waitLog("sync: table at revision 3: 2 servers (1 added, 0 changed, 1 removed)", time.Second)
}

// faultRegistrar answers the first poll (no ?after) with a good table at revision 1
// and every later poll with its fault, until heal; then with revision 2. It counts
// the fault answers it gave, so a test can compare them with the sync's failure
// counter.
type faultRegistrar struct {
	srv     *httptest.Server
	fault   func(f *faultRegistrar, w http.ResponseWriter, r *http.Request)
	healed  atomic.Bool
	faults  atomic.Int64
	release chan struct{} // closed at cleanup: frees handlers that block
}

func newFaultRegistrar(t *testing.T, fault func(f *faultRegistrar, w http.ResponseWriter, r *http.Request)) *faultRegistrar {
	f := &faultRegistrar{fault: fault, release: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		close(f.release)
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

func (f *faultRegistrar) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case !r.URL.Query().Has("after"):
		io.WriteString(w, `{"revision":1,"routes":{"web-1":"10.0.0.1"}}`)
	case f.healed.Load() && r.URL.Query().Get("after") == "1":
		io.WriteString(w, `{"revision":2,"routes":{"web-1":"10.0.0.2"}}`)
	case f.healed.Load():
		select { // nothing newer: hold the poll like the registrar does
		case <-r.Context().Done():
		case <-f.release:
		case <-time.After(time.Second):
		}
		w.WriteHeader(http.StatusNotModified)
	default:
		f.faults.Add(1)
		f.fault(f, w, r)
	}
}

// resetConn closes the connection with a TCP RST.
func resetConn(w http.ResponseWriter) {
	if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
}

// TestReliabilityRegistrarFaultsAreCounted: whatever the registrar does wrong, the
// table is kept, every failed poll is counted once in switchyard.sync.failure (and
// none as a success), no VM dies, the sync VM's memory does not grow with what it
// was sent, and the sync picks up the registrar's next table once it is healthy.
//
// The 50 MiB body is refused by the host's http-call buffer limit (16 MiB, like
// Envoy's limit on a buffered async response: the call fails with (0, 0, 0) and
// status "reset"), so it never enters the VM.
func TestReliabilityRegistrarFaultsAreCounted(t *testing.T) {
	huge := make([]byte, 50<<20)
	copy(huge, `{"revision":9,"routes":{"web-1":"10.9.9.9"},"pad":"`)
	for i := 60; i < len(huge)-2; i++ {
		huge[i] = 'x'
	}
	copy(huge[len(huge)-2:], `"}`)
	tests := []struct {
		name  string
		fault func(f *faultRegistrar, w http.ResponseWriter, r *http.Request)
		log   string // the sync's warning for it
	}{
		{"500", func(_ *faultRegistrar, w http.ResponseWriter, r *http.Request) {
			http.Error(w, "database is locked", http.StatusInternalServerError)
		}, "answered HTTP 500"},
		{"garbage", func(_ *faultRegistrar, w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "\x00\xff<html>not json")
		}, "invalid route table (body is not valid JSON)"},
		{"50 MiB body", func(_ *faultRegistrar, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(huge)
		}, "the registrar could not be reached"},
		{"reset before headers", func(_ *faultRegistrar, w http.ResponseWriter, r *http.Request) {
			resetConn(w)
		}, "keeping the table at revision 1"},
		{"reset in the body", func(_ *faultRegistrar, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			io.WriteString(w, `{"revision":9,"routes":{`)
			w.(http.Flusher).Flush()
			resetConn(w)
		}, "keeping the table at revision 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := newFaultRegistrar(t, tt.fault)
			e := newFEnv(t, host.Options{}, nil)
			e.h.SetCluster("registrar", reg.srv.URL)
			syncVM := e.vm("sync", filterConfig(""))
			r := e.vm("router", filterConfig(""))
			e.waitLog("sync: table at revision 1", syncWithin)
			memBefore := syncVM.MemoryBytes()

			e.waitLog(tt.log, syncWithin)
			waitMetric(t, e, "switchyard.sync.failure", 2, syncWithin) // the first retry failed too
			waitRouted(t, r, "web-1", "10.0.0.1:8080", time.Second)
			failures, faults := e.metric("switchyard.sync.failure"), reg.faults.Load()
			if failures > faults || failures < faults-1 { // one fault may still be on its way
				t.Errorf("switchyard.sync.failure = %d after %d faulty answers; want each counted once", failures, faults)
			}
			if s := e.metric("switchyard.sync.success"); s != 1 {
				t.Errorf("switchyard.sync.success = %d, want 1 (the first table only)", s)
			}
			for _, vm := range []*host.VM{syncVM, r} {
				if err := vm.Err(); err != nil {
					t.Fatalf("a VM died: %v", err)
				}
			}
			if grown := syncVM.MemoryBytes() - memBefore; grown > 4<<20 {
				t.Errorf("the sync VM's memory grew by %d MiB over %d faulty answers", grown>>20, faults)
			}

			reg.healed.Store(true)
			waitRouted(t, r, "web-1", "10.0.0.2:8080", 3*syncWithin)
		})
	}
}

// TestReliabilitySlowBodyTimesOut: a registrar that sends its headers and then
// trickles the body slower than the poll's timeout (wait + 10 s) is cut off by the
// timeout, counted as a failure, and the table stays. The host clock is driven, so
// the test does not wait 11 s.
func TestReliabilitySlowBodyTimesOut(t *testing.T) {
	reg := newFaultRegistrar(t, func(f *faultRegistrar, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "100000")
		for i := 0; i < 600; i++ { // at most a minute of real time
			if _, err := io.WriteString(w, " "); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-f.release:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	clk := host.NewManualClock(time.Now())
	e := newFEnv(t, host.Options{Clock: clk}, nil)
	e.h.SetCluster("registrar", reg.srv.URL)
	syncVM := e.vm("sync", filterConfig(""))
	r := e.vm("router", filterConfig(""))
	clk.Advance(200 * time.Millisecond) // first tick: the first poll
	e.waitLog("sync: table at revision 1", syncWithin)

	waitFaults(t, reg, 1)
	clk.Advance(12 * time.Second) // past the poll's timeout of wait + 10 s
	e.waitLog("the registrar answered HTTP 504", syncWithin)
	if f := e.metric("switchyard.sync.failure"); f != 1 {
		t.Errorf("switchyard.sync.failure = %d after one timed-out poll, want 1", f)
	}
	waitRouted(t, r, "web-1", "10.0.0.1:8080", time.Second)
	if err := syncVM.Err(); err != nil {
		t.Fatalf("the sync VM died: %v", err)
	}

	reg.healed.Store(true)
	deadline := time.Now().Add(syncWithin)
	for fRequest(t, r, "/sys/x", "web-1").header(":authority") != "10.0.0.2:8080" {
		if time.Now().After(deadline) {
			t.Fatalf("the table did not follow the healed registrar\nlogs:\n%s", e.logText())
		}
		clk.Advance(100 * time.Millisecond) // the retry is due within the backoff
		time.Sleep(5 * time.Millisecond)
	}
}

func waitFaults(t *testing.T, reg *faultRegistrar, n int64) {
	t.Helper()
	eventually(t, syncWithin, func() string {
		if f := reg.faults.Load(); f < n {
			return fmt.Sprintf("the registrar gave %d faulty answers, want %d", f, n)
		}
		return ""
	})
}

func waitMetric(t *testing.T, e *fEnv, name string, min int64, within time.Duration) {
	t.Helper()
	eventually(t, within, func() string {
		if v := e.metric(name); v < min {
			return fmt.Sprintf("%s = %d, want at least %d\nlogs:\n%s", name, v, min, e.logText())
		}
		return ""
	})
}

// TestReliabilityTrappingRouterIsReplaced: a router VM that traps answers 503 for the
// request that killed it, and the dev proxy replaces it, so a later request is served
// by a fresh VM. The real filter never traps on purpose; testdata/trapguest traps on
// a path ending in /trap and otherwise answers how many requests its VM has served.
func TestReliabilityTrappingRouterIsReplaced(t *testing.T) {
	reg := newFRegistrar(t, nil)
	p, err := devproxy.New(t.Context(), devproxy.Config{
		Wasm:         testbin.Guest(t, "testdata/trapguest"),
		RegistrarURL: reg.url(),
		Workers:      1, // one router VM: every request goes to the same slot
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("devproxy.New: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)

	for want := 1; want <= 2; want++ {
		if got := get(t, srv.URL+"/sys/ok"); got.status != 200 || got.body != `{"served":`+strconv.Itoa(want)+`}` {
			t.Fatalf("request %d before the trap: %d %q", want, got.status, got.body)
		}
	}
	got := get(t, srv.URL+"/sys/trap")
	if got.status != 503 || got.errorCode() != "filter_unavailable" {
		t.Fatalf("the trapping request got %d %q, want 503 filter_unavailable", got.status, got.body)
	}
	if !strings.Contains(got.body, "trap requested") {
		t.Errorf("the 503 does not carry the VM's panic text: %q", got.body)
	}
	// While the slot is being refilled requests get 503 at once; then a fresh VM
	// (its count starts again at 1) serves them.
	eventually(t, syncWithin, func() string {
		if g := get(t, srv.URL+"/sys/ok"); g.status != 200 || g.body != `{"served":1}` {
			return fmt.Sprintf("after the trap: %d %q, want 200 from a fresh VM", g.status, g.body)
		}
		return ""
	})
	if !p.Ready() {
		t.Errorf("the dev proxy is not ready after replacing the VM")
	}
}

// TestReliabilityLegacyMillionRequests: under the host's Legacy profile (Envoy
// 1.33–1.37, where poll_oneoff fails and one call crashes a Go guest) a router VM
// serves 1,000,000 requests with GC cycles forced (GOGC=1, and one reply in ten
// allocates), while the sync applies changes: no poll_oneoff, every VM alive, every
// answer right.
func TestReliabilityLegacyMillionRequests(t *testing.T) {
	const requests = 1_000_000
	routes := make(map[string]string, 1000)
	for i := 0; i < 1000; i++ {
		routes["n"+strconv.Itoa(i)] = "10.0." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + ":80"
	}
	e := newFEnv(t, host.Options{Profile: host.Legacy}, copyRoutes(routes))
	gc := map[string]string{"GOGC": "1"}
	syncVM := e.vmWith(host.PluginConfig{Name: "switchyard", RootID: "sync", VMID: "switchyard", Configuration: filterConfig(""), Env: gc})
	r := e.vmWith(host.PluginConfig{Name: "switchyard", RootID: "router", VMID: "switchyard", Configuration: filterConfig(""), Env: gc})
	e.waitLog("sync: table at revision 1", syncWithin)

	headers := func(name string) host.Headers {
		return host.Headers{{":method", "GET"}, {":path", "/sys/x"}, {":authority", "p"}, {"x-server-name", name}}
	}
	known, unknown := headers("n7"), headers("nobody")
	start := time.Now()
	var memStart uint64
	for i := 0; i < requests; i++ {
		if i == 10_000 {
			memStart = r.MemoryBytes()
		}
		h := known
		if i%10 == 9 {
			h = unknown // a 404 body is built per request: garbage for the GC
		}
		s, err := r.NewStream(host.StreamAttributes{})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if _, err := s.RequestHeaders(h, true); err != nil {
			t.Fatalf("request %d: the router VM failed: %v", i, err)
		}
		lr := s.LocalResponse()
		if i%10 == 9 && (lr == nil || lr.Status != 404) || i%10 != 9 && lr != nil {
			t.Fatalf("request %d: local response %+v", i, lr)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("request %d: closing the stream: %v", i, err)
		}
		if i%100_000 == 0 {
			e.reg.put("n"+strconv.Itoa(i%1000+1), "10.9.9.9") // keep the sync allocating too
		}
	}
	t.Logf("%d requests in %v (%v each)", requests, time.Since(start).Round(time.Millisecond), time.Since(start)/requests)
	for _, vm := range []*host.VM{syncVM, r} {
		if err := vm.Err(); err != nil {
			t.Fatalf("a VM died: %v", err)
		}
	}
	if n := e.h.PollOneoffCalls(); n != 0 {
		t.Fatalf("poll_oneoff called %d times, want 0", n)
	}
	// 100,000 reply bodies of ~70 bytes were garbage: flat memory shows they were
	// collected, i.e. that GC cycles ran.
	if memEnd := r.MemoryBytes(); memEnd > memStart+(2<<20) {
		t.Errorf("the router VM's memory grew from %d to %d KiB", memStart>>10, memEnd>>10)
	}
	t.Logf("router VM memory: %d KiB after 10,000 requests, %d KiB at the end", memStart>>10, r.MemoryBytes()>>10)
	if v := e.metric("switchyard.rejected.unknown_server"); v != requests/10 {
		t.Errorf("switchyard.rejected.unknown_server = %d, want %d", v, requests/10)
	}
}

// TestReliabilityFailStaticUnderLoad: with 8 clients sending requests for registered
// names through the built dev proxy, the real registrar stops for 10 s and comes
// back. No request fails during the outage, and a change made after the registrar
// is back reaches the routers within the backoff cap (30 s) plus 1 s.
func TestReliabilityFailStaticUnderLoad(t *testing.T) {
	const (
		clients  = 8
		outage   = 10 * time.Second
		maxTotal = 500_000 // a bound on the load loop, far above what the test needs
	)
	reg := startRegistrar(t)
	alpha, beta := upstream(t, "alpha"), upstream(t, "beta")
	register(t, reg.url(), "web-1", alpha)
	register(t, reg.url(), "web-2", alpha)
	px := startDevproxy(t, reg.url())
	eventually(t, propagation, func() string {
		if g := get(t, px.url()+"/sys/x", "X-Server-Name", "web-2"); !strings.HasPrefix(g.body, "alpha") {
			return fmt.Sprintf("web-2 → %d %q", g.status, g.body)
		}
		return ""
	})

	// The load: web-2 must always reach alpha; web-1 alpha, or beta once changed.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	var (
		stop     atomic.Bool
		sent     atomic.Int64
		failed   atomic.Int64
		firstBad atomic.Value // string
		seenBeta atomic.Bool
		wg       sync.WaitGroup
	)
	one := func(name string) {
		req, _ := http.NewRequest("GET", px.url()+"/sys/load", nil)
		req.Header.Set("X-Server-Name", name)
		resp, err := client.Do(req)
		var body string
		status := 0
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body, status = string(b), resp.StatusCode
		}
		ok := status == 200 && (strings.HasPrefix(body, "alpha") || name == "web-1" && strings.HasPrefix(body, "beta"))
		if name == "web-1" && strings.HasPrefix(body, "beta") {
			seenBeta.Store(true)
		}
		if !ok {
			failed.Add(1)
			firstBad.CompareAndSwap(nil, fmt.Sprintf("%s → %d %q (err %v)", name, status, body, err))
		}
	}
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load() && sent.Add(1) <= maxTotal; i++ {
				one([]string{"web-1", "web-2"}[(c+i)%2])
			}
		}()
	}
	t.Cleanup(func() { stop.Store(true); wg.Wait() })

	time.Sleep(500 * time.Millisecond) // load before the outage too
	reg.Stop()
	before := sent.Load()
	time.Sleep(outage)
	during := sent.Load() - before
	reg.Restart() // same address, same data file
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed while the registrar was down; first: %s", f, sent.Load(), firstBad.Load())
	}
	if during < 100 {
		t.Fatalf("only %d requests during the outage; the load did not run", during)
	}

	changed := time.Now()
	register(t, reg.url(), "web-1", beta)
	deadline := changed.Add(31 * time.Second) // backoff cap + 1 s
	for !seenBeta.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("the change did not reach the routers within 31 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed; first: %s", f, sent.Load(), firstBad.Load())
	}
	t.Logf("%d requests, %d during the %v outage, none failed; the change arrived after %v",
		sent.Load(), during, outage, time.Since(changed).Round(time.Millisecond))
}

// TestReliabilityLargeGarbageDoesNotGrowMemoryForGood: a body under the buffer limit
// enters the sync VM, whose linear memory never shrinks; repeated garbage of that
// size must reuse that memory (the body of a failed poll is garbage once it is
// refused), not add to it with every retry. The host clock is driven, so the
// retries' backoff costs no real time.
func TestReliabilityLargeGarbageDoesNotGrowMemoryForGood(t *testing.T) {
	const size = 12 << 20 // under the host's 16 MiB limit (Envoy's is 32 MiB)
	// Cut short (no closing brace), so the sync refuses it after reading it whole.
	garbage := []byte(`{"revision":9,"routes":{"web-1":"10.9.9.9"},"pad":"` + strings.Repeat("x", size) + `"`)
	reg := newFaultRegistrar(t, func(_ *faultRegistrar, w http.ResponseWriter, r *http.Request) {
		w.Write(garbage)
	})
	clk := host.NewManualClock(time.Now())
	e := newFEnv(t, host.Options{Clock: clk}, nil)
	e.h.SetCluster("registrar", reg.srv.URL)
	syncVM := e.vm("sync", filterConfig(""))
	r := e.vm("router", filterConfig(""))
	failuresReach := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(4 * syncWithin)
		for e.metric("switchyard.sync.failure") < n {
			if time.Now().After(deadline) {
				t.Fatalf("switchyard.sync.failure = %d, want %d\nlogs:\n%s", e.metric("switchyard.sync.failure"), n, e.logText())
			}
			clk.Advance(100 * time.Millisecond)
			time.Sleep(5 * time.Millisecond)
		}
	}
	failuresReach(2)
	memAfter2 := syncVM.MemoryBytes()
	failuresReach(6)
	memAfter6 := syncVM.MemoryBytes()
	t.Logf("sync VM memory: %d MiB after 2 refused %d MiB bodies, %d MiB after 6", memAfter2>>20, size>>20, memAfter6>>20)
	if memAfter6 > memAfter2+size/2 {
		t.Errorf("the sync VM's memory grew from %d to %d MiB over 4 more refused bodies", memAfter2>>20, memAfter6>>20)
	}
	waitRouted(t, r, "web-1", "10.0.0.1:8080", time.Second)
	if err := syncVM.Err(); err != nil {
		t.Fatalf("the sync VM died: %v", err)
	}
}
