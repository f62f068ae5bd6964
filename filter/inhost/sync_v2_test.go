package inhost

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/internal/testkit/wait"
	"switchyard/registrar/server"
	"switchyard/wasmhost"
)

// The sync protocol version 2 (docs/sync-protocol.md) with the real filter.wasm in the
// wasmhost and the real registrar: deltas, paged full tables, lineage, identity.

// waitQuery waits (bounded) until the registrar has seen a poll for which match holds.
func waitQuery(t *testing.T, reg *fRegistrar, what string, match func(q map[string][]string) bool) {
	t.Helper()
	wait.Eventually(t, syncWithin, func() string {
		for _, q := range reg.seen() {
			if match(q) {
				return ""
			}
		}
		return "no poll " + what + fmt.Sprintf(" among %v", reg.seen())
	})
}

func get(q map[string][]string, k string) string {
	if v := q[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// TestSyncRestartedOnDeltaBuiltTableForgetsRemovedNames: a table built by deltas (the
// names index then grew by appends only), the sync VM replaced while the routers keep
// shared data alive, a name removed and one added meanwhile: the new sync resumes at
// the revision and lineage it finds, asks for the changes since, and the removed name
// stops routing.
func TestSyncRestartedOnDeltaBuiltTableForgetsRemovedNames(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, map[string]string{"a": "10.0.0.1"})
	syncA := e.vm("sync", filterConfig(""))
	r := e.vm("router", filterConfig(""))
	e.waitLog("sync: table at revision 1: 1 servers from a full table", syncWithin)
	e.reg.put("b", "10.0.0.2")
	e.waitLog("sync: table at revision 2: 2 servers (1 added, 0 changed, 0 removed) from a delta", syncWithin)
	e.reg.put("c", "10.0.0.3")
	e.waitLog("sync: table at revision 3: 3 servers (1 added, 0 changed, 0 removed) from a delta", syncWithin)
	waitRouted(t, r, "b", "10.0.0.2:8080", time.Second)

	// The sync releases the poll lease as it closes and the router takes it at its next
	// tick; the registrar answers no poll until the new sync runs, so the table in shared
	// data stays the one sync A left.
	e.reg.setMode("500")
	if err := syncA.Close(); err != nil {
		t.Fatalf("closing sync VM A: %v", err)
	}
	e.reg.put("b", "")         // revision 4: b removed while no sync runs
	e.reg.put("d", "10.0.0.4") // revision 5: d added
	if got := fRequest(t, r, "/sys/x", "b"); got.header(":authority") != "10.0.0.2:8080" {
		t.Fatalf("with no sync running, b should still route from shared data; got %d %q", got.status(), got.header(":authority"))
	}

	e.vm("sync", filterConfig(""))
	e.waitLog("sync: resuming the table already in shared data at revision 3 (3 servers)", syncWithin)
	e.reg.setMode("")
	waitRouted(t, r, "b", "", syncWithin)
	waitRouted(t, r, "d", "10.0.0.4:8080", time.Second)
	waitRouted(t, r, "c", "10.0.0.3:8080", time.Second)
	e.waitLog("sync: table at revision 5: 3 servers (1 added, 0 changed, 1 removed) from a delta", time.Second)
	waitQuery(t, e.reg, "of the new sync for the changes since revision 3", func(q map[string][]string) bool {
		return get(q, "after") == "3" && get(q, "lineage") == e.reg.lineage() && get(q, "v") == "3"
	})
}

// TestSyncBehindRetainedHistoryGetsFullTable: a proxy that fell further behind than
// the registrar keeps changes for gets a full table (in pages here) and converges.
func TestSyncBehindRetainedHistoryGetsFullTable(t *testing.T) {
	routes := map[string]string{}
	for i := 0; i < 10; i++ {
		routes["n"+strconv.Itoa(i)] = "10.0.0." + strconv.Itoa(i+1)
	}
	e := newFEnvWith(t, wasmhost.Options{}, server.Config{History: 3}, routes)
	r := startSynced(t, e, 1, filterConfig(""))[0]
	e.reg.setMode("500") // the proxy loses the registrar ...
	e.waitLog("answered HTTP 500", syncWithin)
	for i := 0; i < 6; i++ { // ... while more changes happen than it retains
		e.reg.put("n"+strconv.Itoa(i), "10.0.1."+strconv.Itoa(i+1))
	}
	e.reg.put("n9", "")
	e.reg.setMode("")
	e.waitLog("sync: table at revision 8: 9 servers (10 before) from a full table", 3*syncWithin)
	waitRouted(t, r, "n5", "10.0.1.6:8080", time.Second)
	waitRouted(t, r, "n9", "", time.Second)
	waitRouted(t, r, "n7", "10.0.0.8:8080", time.Second)
	// Back in the retained history: the next change comes as a delta.
	e.reg.put("n7", "10.0.2.8")
	e.waitLog("sync: table at revision 9: 9 servers (0 added, 1 changed, 0 removed) from a delta", syncWithin)
	waitRouted(t, r, "n7", "10.0.2.8:8080", time.Second)
}

// TestSyncPagesInterleavedWithWrites: while a full table comes in pages, the registrar
// keeps changing. The pages all come from one snapshot; no router ever sees part of
// it (each look between pages sees the old table whole); after the last page the
// routers see that revision, and the writes made meanwhile follow as a delta.
func TestSyncPagesInterleavedWithWrites(t *testing.T) {
	const n = 600 // about 20 bytes a name: 3 or more pages of the smallest page size
	name := func(i int) string { return fmt.Sprintf("n%03d", i) }
	old, next := map[string]string{}, map[string]string{}
	for i := 0; i < n; i++ {
		old[name(i)] = "10.0." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&255)
		next[name(i)] = "10.9." + strconv.Itoa(i>>8) + "." + strconv.Itoa(i&255)
	}
	e := newFEnvWith(t, wasmhost.Options{}, server.Config{PageBytes: server.MinPageBytes}, old)
	r := startSynced(t, e, 1, filterConfig(""))[0]
	waitRouted(t, r, name(n-1), old[name(n-1)]+":8080", time.Second)

	// Between pages, look at every 20th name through the router (every page holds
	// some) and register a new name.
	var mu sync.Mutex
	var views []map[string]string
	var lookErr error
	look := func() map[string]string {
		v := map[string]string{}
		for i := 0; i < n; i += 20 {
			s, err := r.NewStream(wasmhost.StreamAttributes{})
			if err != nil {
				lookErr = err
				return v
			}
			s.RequestHeaders(wasmhost.Headers{{":method", "GET"}, {":path", "/sys/x"}, {":authority", "p"}, {"x-server-name", name(i)}}, true)
			a, _ := s.RequestHeaderMap().Get(":authority")
			if s.LocalResponse() != nil {
				a = strconv.Itoa(s.LocalResponse().Status)
			}
			s.Close()
			v[name(i)] = a
		}
		return v
	}
	writes := 0
	e.reg.setPageHook(func(start string) {
		mu.Lock()
		defer mu.Unlock()
		views = append(views, look())
		writes++
		e.reg.put("w"+strconv.Itoa(writes), "10.0.8."+strconv.Itoa(writes)) // a write between pages
	})
	// The registrar's data is replaced by a new history, which the sync gets in pages.
	e.reg.replace(next)
	l := e.waitLog("sync: table at revision 1: 600 servers (600 before) from a full table in ", 3*syncWithin)
	for i := 0; i < n; i += 7 {
		waitRouted(t, r, name(i), next[name(i)]+":8080", time.Second)
	}
	mu.Lock()
	pages, w := len(views)+1, writes
	mu.Unlock()
	if !strings.HasSuffix(l.Message, " in "+strconv.Itoa(pages)+" pages") || pages < 3 {
		t.Errorf("%q after %d page requests; want at least 3 pages", l.Message, pages-1)
	}
	e.waitLog(fmt.Sprintf("sync: table at revision %d: %d servers (%d added, 0 changed, 0 removed) from a delta", 1+w, n+w, w), syncWithin)
	waitRouted(t, r, "w"+strconv.Itoa(w), "10.0.8."+strconv.Itoa(w)+":8080", time.Second)

	mu.Lock()
	defer mu.Unlock()
	if lookErr != nil {
		t.Fatal(lookErr)
	}
	for i, v := range views {
		for name, target := range v {
			if target != old[name]+":8080" {
				t.Errorf("look before page %d: %s → %s; a router saw part of the new table (want the old table whole: %s)", i+2, name, target, old[name])
			}
		}
	}
	// Every page was asked from the snapshot of the first.
	for _, q := range e.reg.seen() {
		if get(q, "snapshot") != "" && get(q, "snapshot") != "1" {
			t.Errorf("a page request %v not of snapshot 1", q)
		}
	}
}

// TestSyncRefusedDeltaFallsBackToFull: a delta that does not start at the live
// revision is refused whole (nothing of it applied, counted as a failure, logged),
// and the sync asks for a full table, which brings the change.
func TestSyncRefusedDeltaFallsBackToFull(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, map[string]string{"a": "10.0.0.1", "b": "10.0.0.2"})
	r := startSynced(t, e, 1, filterConfig(""))[0]
	e.reg.setMode("baddelta")
	e.reg.put("a", "10.0.0.9")
	e.waitLog("refused a delta to revision 2 because it starts at revision 0, the live table is at 1; asking for a full table", syncWithin)
	if f := e.metric("switchyard.sync.failure"); f != 1 {
		t.Errorf("switchyard.sync.failure = %d after one refused delta, want 1", f)
	}
	if got := fRequest(t, r, "/sys/x", "a"); got.header(":authority") != "10.0.0.1:8080" {
		t.Errorf("the refused delta was applied: a → %q", got.header(":authority"))
	}
	e.waitLog("sync: table at revision 2: 2 servers (2 before) from a full table", 3*syncWithin)
	waitRouted(t, r, "a", "10.0.0.9:8080", time.Second)
	waitQuery(t, e.reg, "for a full table after the refusal", func(q map[string][]string) bool {
		return get(q, "v") == "3" && get(q, "after") == "" && get(q, "lineage") == "" && get(q, "snapshot") == ""
	})
}

// TestSyncTakesNewLineage: the registrar's data is replaced (new lineage, revision
// back to 1, other names): the sync takes the new full table although its revision is
// lower than the live one, logs it loudly, and follows the new history's changes.
func TestSyncTakesNewLineage(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, map[string]string{"a": "10.0.0.1"})
	r := startSynced(t, e, 1, filterConfig(""))[0]
	for i := 0; i < 4; i++ {
		e.reg.put("a", "10.0.0."+strconv.Itoa(i+2))
	}
	e.waitLog("sync: table at revision 5", syncWithin)
	l1 := e.reg.lineage()
	e.reg.replace(map[string]string{"b": "10.0.1.1"})
	l2 := e.reg.lineage()
	if l1 == l2 || l2 == "" {
		t.Fatalf("lineages %q then %q: a new data file must give a new lineage", l1, l2)
	}
	l := e.waitLog("the registrar's history changed (lineage "+l1+" at revision 5 → lineage "+l2+" at revision 1)", syncWithin)
	if l.Level < wasmhost.Warn {
		t.Errorf("the lineage change was logged at level %v, want warn or above", l.Level)
	}
	waitRouted(t, r, "a", "", syncWithin)
	waitRouted(t, r, "b", "10.0.1.1:8080", time.Second)
	e.reg.put("c", "10.0.1.2")
	e.waitLog("sync: table at revision 2: 2 servers (1 added, 0 changed, 0 removed) from a delta", syncWithin)
	waitRouted(t, r, "c", "10.0.1.2:8080", time.Second)
	if v, _, _ := e.h.SharedData("switchyard", "switchyard/revision"); string(v) != "2" {
		t.Errorf("revision key %q, want 2", v)
	}
}

// TestSyncSendsIdentity: every poll names the proxy (proxy_id when configured), and
// the filter's build version.
func TestSyncSendsIdentity(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, nil)
	e.vm("sync", filterConfig(`"proxy_id": "edge-eu-1"`))
	e.waitLog("sync: table at revision", syncWithin)
	waitQuery(t, e.reg, "with the identity", func(q map[string][]string) bool {
		return get(q, "proxy") == "edge-eu-1" && get(q, "version") != "" && !strings.ContainsAny(get(q, "version"), " \n")
	})
	t.Logf("the filter reports version %q", get(e.reg.seen()[0], "version"))
}
