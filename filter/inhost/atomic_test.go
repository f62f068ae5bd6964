package inhost

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/filter/polling"
	"switchyard/internal/contract"
	"switchyard/internal/testkit/wait"
	"switchyard/registrar/server"
	"switchyard/wasmhost"
)

// Full tables switched atomically (filter/polling/layout.go): the real filter.wasm in
// the wasmhost with the real registrar. A full table is streamed into the generation
// routers do not read and switched with one write; the old generation is emptied.

// tableOf gives n names whose target tells the table: 10.<table>.x.y.
func tableOf(n, table int) map[string]string {
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		m[atomicName(i)] = "10." + strconv.Itoa(table) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
	}
	return m
}

func atomicName(i int) string { return fmt.Sprintf("s%06d", i) }

// fromTable is what one request through a router came to, reduced to the table that
// answered ("10.<table>." of the authority) or the local reply's status.
type fromTable struct {
	table  int // 0 when there was no target
	status int // local reply status, 0 when routed
}

// ask sends one request for name through vm without failing the test (it runs in a
// load loop beside the test goroutine).
func ask(vm *wasmhost.VM, name string) (fromTable, error) {
	s, err := vm.NewStream(wasmhost.StreamAttributes{})
	if err != nil {
		return fromTable{}, err
	}
	defer s.Close()
	if _, err := s.RequestHeaders(wasmhost.Headers{{":method", "GET"}, {":path", "/sys/x"}, {":authority", "p"}, {"x-server-name", name}}, true); err != nil {
		return fromTable{}, err
	}
	if lr := s.LocalResponse(); lr != nil {
		return fromTable{status: lr.Status}, nil
	}
	a, _ := s.RequestHeaderMap().Get(":authority")
	f := strings.SplitN(a, ".", 3)
	if len(f) < 3 || f[0] != "10" {
		return fromTable{}, fmt.Errorf("%s routed to %q, no table's target", name, a)
	}
	n, _ := strconv.Atoi(f[1])
	return fromTable{table: n}, nil
}

// loadLoop asks names through vm, in a steady loop, until stop is closed or max
// requests or within passed, and checks the atomic switch from table from to table to:
// every answer is from one of the two, none is 503 or 404 (every name is in both),
// and no answer after the first from `to` is from `from`.
type loadLoop struct {
	done                     chan struct{}
	requests, fromN, toN     int
	oldAfterNew, bad, status int
	firstBad                 string
	err                      error
}

func startLoad(vm *wasmhost.VM, n, from, to int, stop <-chan struct{}, max int, within time.Duration) *loadLoop {
	l := &loadLoop{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		deadline := time.Now().Add(within)
		seenNew := false
		for i := 0; i < max && time.Now().Before(deadline); i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := atomicName(i * 7919 % n)
			a, err := ask(vm, name)
			if err != nil {
				l.err = err
				return
			}
			l.requests++
			switch {
			case a.status != 0:
				l.status++
				if l.firstBad == "" {
					l.firstBad = fmt.Sprintf("request %d for %s answered %d", l.requests, name, a.status)
				}
			case a.table == to:
				l.toN++
				seenNew = true
			case a.table == from:
				l.fromN++
				if seenNew {
					l.oldAfterNew++
					if l.firstBad == "" {
						l.firstBad = fmt.Sprintf("request %d for %s answered from the old table after the new one", l.requests, name)
					}
				}
			default:
				l.bad++
			}
		}
	}()
	return l
}

// TestFullReloadUnderLoadIsAtomic: 100,000 names, reloaded as a full table in pages
// (the registrar's history replaced) while a router answers a steady request loop.
// Every answer comes from the old table or the new one, none after the first new one
// from the old one, none is 503/404 (every name is in both tables); the old generation
// is emptied afterwards.
func TestFullReloadUnderLoadIsAtomic(t *testing.T) {
	const n = 100_000
	// Pages of 256 KiB (about 10,000 names): the sync returns to the host between
	// pages, so it ticks (and keeps the poll lease) however busy the machine is.
	e := newFEnvWith(t, wasmhost.Options{}, server.Config{PageBytes: 256 << 10}, tableOf(n, 1))
	r := startSynced(t, e, 1, filterConfig(""))[0]
	waitRouted(t, r, atomicName(n-1), "10.1.134.159:8080", time.Minute)
	before := e.countLogs("from a full table")

	stop := make(chan struct{})
	l := startLoad(r, n, 1, 2, stop, 2_000_000, 2*time.Minute)
	e.reg.replace(tableOf(n, 2))
	e.waitLog("sync: table at revision 1: 100000 servers (100000 before) from a full table in ", time.Minute)
	// Let the loop run on the new table for a while, then stop it.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	<-l.done
	if l.err != nil {
		t.Fatal(l.err)
	}
	t.Logf("%d requests: %d from the old table, %d from the new", l.requests, l.fromN, l.toN)
	if l.oldAfterNew != 0 || l.status != 0 || l.bad != 0 {
		t.Errorf("%d answers from the old table after the new, %d local replies, %d from neither table; first: %s",
			l.oldAfterNew, l.status, l.bad, l.firstBad)
	}
	if l.fromN == 0 || l.toN == 0 {
		t.Errorf("the loop saw %d old and %d new answers; it must span the switch", l.fromN, l.toN)
	}
	if got := e.countLogs("from a full table"); got != before+1 {
		t.Errorf("%d full tables loaded during the reload, want 1", got-before)
	}
	waitEmptied(t, e, "a")
}

// forceFullTable makes the sync load a full table: one change that the registrar
// sends as a delta starting a revision early, which the sync refuses, so it asks
// for the full table. It waits (bounded) for the table's log line.
func forceFullTable(t testing.TB, e *fEnv, i int, within time.Duration) {
	t.Helper()
	full := e.countLogs("from a full table")
	e.reg.setMode("baddelta")
	e.reg.put(atomicName(i), "10.99.0."+strconv.Itoa(i&255))
	wait.Eventually(t, within, func() string {
		if e.countLogs("from a full table") <= full {
			return "full table " + strconv.Itoa(i) + " not loaded"
		}
		return ""
	})
	e.reg.setMode("")
}

// retiredGen is the generation routers do not read.
func retiredGen(e *fEnv) string {
	if v, _, _ := e.h.SharedData("switchyard", contract.CurrentKey); string(v) == contract.RouteKeyPrefixA {
		return "b"
	}
	return "a"
}

// waitEmptied waits (bounded: the grace plus a tick per CleanBudget names of a table
// of up to 1,000,000, with room for a busy machine) until generation g's table key is
// clean, and checks sample route keys of g are empty.
func waitEmptied(t testing.TB, e *fEnv, g string) {
	t.Helper()
	wait.Eventually(t, syncWithin+time.Minute, func() string {
		if v, _, _ := e.h.SharedData("switchyard", "switchyard/"+g+"/state"); len(v) != 0 {
			return "generation " + g + " is " + string(v)
		}
		return ""
	})
	for i := 0; i < 1000; i++ {
		if v, _, _ := e.h.SharedData("switchyard", "switchyard/"+g+"/route/"+atomicName(i)); len(v) != 0 {
			t.Fatalf("generation %s still holds %s = %q", g, atomicName(i), v)
		}
	}
}

// sample asks every 50th of n names through vm and counts the answers by the table
// that gave them (a local reply counts as minus its status): all must be from one
// table. It does not fail the test, so that it may run in the registrar's goroutine.
func sample(vm *wasmhost.VM, n int) map[int]int {
	tables := map[int]int{}
	for i := 0; i < n; i += 50 {
		a, err := ask(vm, atomicName(i))
		switch {
		case err != nil:
			tables[-1]++
		case a.status != 0:
			tables[-a.status]++
		default:
			tables[a.table]++
		}
	}
	return tables
}

// TestPollerKilledMidStream: in both host profiles, the sync VM dies (closed) with a
// page of a full table in flight. Routers keep the complete old table; the next sync resumes the load from the
// page after the last one written and switches to the complete new table.
func TestPollerKilledMidStream(t *testing.T) {
	for _, p := range []wasmhost.Profile{wasmhost.Current, wasmhost.Legacy} {
		t.Run(p.String(), func(t *testing.T) { pollerKilledMidStream(t, p) })
	}
}

func pollerKilledMidStream(t *testing.T, profile wasmhost.Profile) {
	const n = 3000
	e := newFEnvWith(t, wasmhost.Options{Profile: profile}, server.Config{PageBytes: server.MinPageBytes}, tableOf(n, 1))
	syncA := e.vm("sync", filterConfig(""))
	r := e.vm("router", filterConfig(""))
	e.waitLog("sync: table at revision 1: 3000 servers", syncWithin)

	var pages atomic.Int32
	killed := make(chan struct{})
	var once sync.Once
	e.reg.setPageHook(func(start string) {
		if pages.Add(1) == 3 {
			once.Do(func() {
				go func() { syncA.Close(); close(killed) }()
			})
			select { // the page is answered to a VM that is gone
			case <-killed:
			case <-time.After(5 * time.Second):
			}
		}
	})
	e.reg.replace(tableOf(n, 2))
	select {
	case <-killed:
	case <-time.After(syncWithin):
		t.Fatalf("the sync never asked for a third page:\n%s", e.logText())
	}
	if got := sample(r, n); len(got) != 1 || got[1] == 0 {
		t.Fatalf("with the load cut short, routers answer %v (table → count); want the old table whole", got)
	}
	e.reg.setPageHook(nil)
	asked := len(e.reg.seen())
	e.vm("sync", filterConfig(""))
	e.waitLog("resuming the full table at revision 1 that the previous sync was loading", syncWithin)
	e.waitLog("sync: table at revision 1: 3000 servers (3000 before) from a full table in ", syncWithin)
	if got := sample(r, n); len(got) != 1 || got[2] == 0 {
		t.Fatalf("after the resumed load routers answer %v; want the new table whole", got)
	}
	if q := e.reg.seen()[asked]; get(q, "snapshot") != "1" || get(q, "start") == "" {
		t.Errorf("the new sync's first poll is %v; want the next page of snapshot 1", q)
	}
	waitEmptied(t, e, "a")
}

// TestRegistrarFailsMidPages (410 in the legacy profile too): the registrar answers the second page of a full table
// with 410 snapshot_gone, a reset connection or a page cut short. Routers keep the
// complete old table meanwhile, and the sync ends on the complete new one (asking the
// page again after a reset, which Envoy answers as a local 503; emptying the half-loaded generation and starting over after
// 410 and garbage).
func TestRegistrarFailsMidPages(t *testing.T) {
	const n = 2000
	for _, c := range []struct {
		fault   string
		profile wasmhost.Profile
	}{{"410", wasmhost.Current}, {"reset", wasmhost.Current}, {"garbage", wasmhost.Current}, {"410", wasmhost.Legacy}} {
		fault := c.fault
		t.Run(fault+"/"+c.profile.String(), func(t *testing.T) {
			e := newFEnvWith(t, wasmhost.Options{Profile: c.profile}, server.Config{PageBytes: server.MinPageBytes}, tableOf(n, 1))
			r := startSynced(t, e, 1, filterConfig(""))[0]
			e.waitLog("sync: table at revision 1: 2000 servers", syncWithin)
			var pages atomic.Int32
			var seen atomic.Value
			e.reg.mu.Lock()
			e.reg.fault = func(w http.ResponseWriter, req *http.Request) bool {
				// Go's http client sends a GET again once when its connection was
				// reset before any answer, so a reset is given twice.
				if !req.URL.Query().Has("snapshot") || pages.Add(1) > map[bool]int32{true: 2, false: 1}[fault == "reset"] {
					return false
				}
				seen.Store(sample(r, n))
				switch fault {
				case "410":
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusGone)
					w.Write([]byte(`{"error":"snapshot_gone"}`))
				case "reset":
					resetConn(w)
				case "garbage":
					w.Header().Set("Content-Type", "application/json")
					w.Write([]byte(`{"kind":"full","lineage":"x","revision":1,"routes":{"s000001":`))
				}
				return true
			}
			e.reg.mu.Unlock()
			e.reg.replace(tableOf(n, 2))
			e.waitLog("sync: table at revision 1: 2000 servers (2000 before) from a full table in ", 3*syncWithin)
			if got, _ := seen.Load().(map[int]int); len(got) != 1 || got[1] == 0 {
				t.Fatalf("with a page loaded, routers answered %v; want the old table whole", got)
			}
			if got := sample(r, n); len(got) != 1 || got[2] == 0 {
				t.Fatalf("after the load routers answer %v; want the new table whole", got)
			}
			want := map[string]string{"410": "410 snapshot_gone", "reset": "answered HTTP 503", "garbage": "invalid page of the route table"}[fault]
			if e.countLogs(want) == 0 {
				t.Errorf("no log line with %q:\n%s", want, e.logText())
			}
			waitEmptied(t, e, "a")
		})
	}
}

// TestMigratesFirstLayoutTable: shared data written by the previous filter (the first
// layout; the fixture was written by its sync) is served by this filter's routers at
// once, replaced by the registrar's full table in one switch, and its keys emptied.
func TestMigratesFirstLayoutTable(t *testing.T) {
	raw, err := os.ReadFile("../polling/testdata/first-layout.json")
	if err != nil {
		t.Fatal(err)
	}
	var kv map[string]string
	if err := json.Unmarshal(raw, &kv); err != nil {
		t.Fatal(err)
	}
	e := newFEnv(t, wasmhost.Options{}, map[string]string{"web-1": "10.7.0.1", "fresh": "10.7.0.2"})
	for k, v := range kv {
		e.h.SetSharedData("switchyard", k, []byte(v))
	}
	e.reg.setMode("hang") // the registrar does not answer yet
	e.vm("sync", filterConfig(""))
	r := e.vm("router", filterConfig(""))
	e.waitLog("found a table of the first shared-data layout", syncWithin)
	if got := fRequest(t, r, "/sys/x", "web-1"); got.header(":authority") != kv[contract.LegacyRouteKeyPrefix+"web-1"]+":8080" {
		t.Fatalf("the first layout's table is not served: web-1 → %d %q", got.status(), got.header(":authority"))
	}
	if got := fRequest(t, r, "/sys/x", "fresh"); got.status() != 404 {
		t.Fatalf("fresh before the full table: %d, want 404", got.status())
	}
	e.reg.setMode("")
	e.waitLog("sync: table at revision 1: 2 servers", syncWithin)
	waitRouted(t, r, "web-1", "10.7.0.1:8080", time.Second)
	waitRouted(t, r, "fresh", "10.7.0.2:8080", time.Second)
	waitRouted(t, r, "web-7", "", time.Second)
	wait.Eventually(t, syncWithin, func() string {
		for k := range kv {
			if k == polling.RevisionKey || k == polling.PolledKey {
				continue
			}
			if v, _, _ := e.h.SharedData("switchyard", k); len(v) != 0 {
				return "the first layout's " + k + " still holds " + string(v)
			}
		}
		return ""
	})
}

// TestKeysBoundedOverFullReloads: 100 full reloads of 100,000 names (each a delta the
// sync refuses, so it asks for the full table; every tenth reload a new history whose
// targets all differ). After each, once the old generation is emptied, shared data
// holds at most two route keys per name plus the indexes, and its bytes stay within
// one table's values plus every key: no generation leaks.
func TestKeysBoundedOverFullReloads(t *testing.T) {
	const n, reloads = 100_000, 100
	e := newFEnvWith(t, wasmhost.Options{}, server.Config{PageBytes: 256 << 10}, tableOf(n, 1))
	e.vm("sync", filterConfig(""))
	e.waitLog("sync: table at revision 1: 100000 servers", time.Minute)
	maxKeys, maxBytes := 0, 0
	for i := 1; i <= reloads; i++ {
		if i%10 == 0 {
			// The same line ends every tenth reload: wait for one more of it, not the first.
			const loaded = "sync: table at revision 1: 100000 servers (100000 before) from a full table"
			before := e.countLogs(loaded)
			e.reg.replace(tableOf(n, 1+i/10))
			wait.Eventually(t, time.Minute, func() string {
				if e.countLogs(loaded) <= before {
					return "the new history of reload " + strconv.Itoa(i) + " not loaded"
				}
				return ""
			})
		} else {
			forceFullTable(t, e, i, time.Minute)
		}
		waitEmptied(t, e, retiredGen(e))
		keys, bytes := e.h.SharedDataSize("switchyard")
		maxKeys, maxBytes = max(maxKeys, keys), max(maxBytes, bytes)
	}
	// Per name: a route key in each generation (key 26 bytes, value at most 14) and an
	// index line (8 bytes) in the current one; segments of 4 KiB; a few fixed keys.
	keyLimit := 2*n + 2*(n*8/polling.SegmentBytes+2) + 20
	byteLimit := 2*n*26 + n*14 + n*8 + 2*(n*8/polling.SegmentBytes+2)*30 + 4096
	t.Logf("after %d reloads of %d names: at most %d keys (limit %d), %d bytes (limit %d)", reloads, n, maxKeys, keyLimit, maxBytes, byteLimit)
	if maxKeys > keyLimit || maxBytes > byteLimit {
		t.Errorf("shared data grew to %d keys, %d bytes; want at most %d keys, %d bytes", maxKeys, maxBytes, keyLimit, byteLimit)
	}
}
