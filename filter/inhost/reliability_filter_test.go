package inhost

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/internal/testkit/wait"
	"switchyard/wasmhost"
)

// Reliability of the filter side: what the sync and the routers do when
// the registrar, the sync VM or a router VM fails. Each test states the promise it
// checks; all of them use the real filter.wasm (or, for a trap, a guest that traps on
// purpose) and real HTTP on loopback.

// TestReliabilityRestartedSyncForgetsRemovedNames: when only the sync VM is replaced
// (the router VMs keep the vm_id's shared data alive), a name removed from the
// registrar while no sync ran stops routing once the new sync is up. The new sync
// learns what shared data holds from the index of names the old one kept.
func TestReliabilityRestartedSyncForgetsRemovedNames(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, map[string]string{"a": "10.0.0.1", "b": "10.0.0.2"})
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

// faultRegistrar is the real registrar with web-1 → 10.0.0.1 at revision 1, whose
// every poll that carries after= (every poll once a table is loaded) gets the fault
// instead of the registrar's answer, until heal. It counts the fault answers it gave,
// so a test can compare them with the sync's failure counter.
type faultRegistrar struct {
	*fRegistrar
	fault   func(f *faultRegistrar, w http.ResponseWriter, r *http.Request)
	healed  atomic.Bool
	faults  atomic.Int64
	release chan struct{} // closed at cleanup: frees handlers that block
}

func newFaultRegistrar(t *testing.T, fault func(f *faultRegistrar, w http.ResponseWriter, r *http.Request)) *faultRegistrar {
	f := &faultRegistrar{fRegistrar: newFRegistrar(t, map[string]string{"web-1": "10.0.0.1"}), fault: fault, release: make(chan struct{})}
	t.Cleanup(func() { close(f.release) }) // runs before the registrar's own cleanup
	f.mu.Lock()
	f.fRegistrar.fault = func(w http.ResponseWriter, r *http.Request) bool {
		if !r.URL.Query().Has("after") || f.healed.Load() {
			return false
		}
		f.faults.Add(1)
		f.fault(f, w, r)
		return true
	}
	f.mu.Unlock()
	return f
}

// heal changes web-1 to 10.0.0.2 (revision 2) and lets polls through again.
func (f *faultRegistrar) heal() {
	f.put("web-1", "10.0.0.2")
	f.healed.Store(true)
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
		}, "or the answer was larger than the proxy's buffer limit for http calls"},
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
			e := newFEnv(t, wasmhost.Options{}, nil)
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
			for _, vm := range []*wasmhost.VM{syncVM, r} {
				if err := vm.Err(); err != nil {
					t.Fatalf("a VM died: %v", err)
				}
			}
			if grown := syncVM.MemoryBytes() - memBefore; grown > 4<<20 {
				t.Errorf("the sync VM's memory grew by %d MiB over %d faulty answers", grown>>20, faults)
			}

			reg.heal()
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
	clk := wasmhost.NewManualClock(time.Now())
	e := newFEnv(t, wasmhost.Options{Clock: clk}, nil)
	e.h.SetCluster("registrar", reg.srv.URL)
	syncVM := e.vm("sync", filterConfig(""))
	r := e.vm("router", filterConfig(""))
	clk.Advance(200 * time.Millisecond) // first tick: the first poll
	e.waitLog("sync: table at revision 1", syncWithin)

	waitFaults(t, reg, 1)
	clk.Advance(12 * time.Second)                               // past the poll's timeout of wait + 10 s
	e.waitLog("the registrar could not be reached", syncWithin) // Envoy resets a call whose body outlives the timeout
	if f := e.metric("switchyard.sync.failure"); f != 1 {
		t.Errorf("switchyard.sync.failure = %d after one timed-out poll, want 1", f)
	}
	waitRouted(t, r, "web-1", "10.0.0.1:8080", time.Second)
	if err := syncVM.Err(); err != nil {
		t.Fatalf("the sync VM died: %v", err)
	}

	reg.heal()
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
	wait.Eventually(t, syncWithin, func() string {
		if f := reg.faults.Load(); f < n {
			return fmt.Sprintf("the registrar gave %d faulty answers, want %d", f, n)
		}
		return ""
	})
}

func waitMetric(t *testing.T, e *fEnv, name string, min int64, within time.Duration) {
	t.Helper()
	wait.Eventually(t, within, func() string {
		if v := e.metric(name); v < min {
			return fmt.Sprintf("%s = %d, want at least %d\nlogs:\n%s", name, v, min, e.logText())
		}
		return ""
	})
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
	e := newFEnv(t, wasmhost.Options{Profile: wasmhost.Legacy}, copyRoutes(routes))
	gc := map[string]string{"GOGC": "1"}
	syncVM := e.vmWith(wasmhost.PluginConfig{Name: "switchyard", RootID: "sync", VMID: "switchyard", Configuration: filterConfig(""), Env: gc})
	r := e.vmWith(wasmhost.PluginConfig{Name: "switchyard", RootID: "router", VMID: "switchyard", Configuration: filterConfig(""), Env: gc})
	e.waitLog("sync: table at revision 1", syncWithin)

	headers := func(name string) wasmhost.Headers {
		return wasmhost.Headers{{":method", "GET"}, {":path", "/sys/x"}, {":authority", "p"}, {"x-server-name", name}}
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
		s, err := r.NewStream(wasmhost.StreamAttributes{})
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
	for _, vm := range []*wasmhost.VM{syncVM, r} {
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
	clk := wasmhost.NewManualClock(time.Now())
	e := newFEnv(t, wasmhost.Options{Clock: clk}, nil)
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
