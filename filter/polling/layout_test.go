package polling

import (
	"encoding/json"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// countingHost wraps a fakeHost and counts what is written.
type countingHost struct {
	*fakeHost
	writes, bytes int
}

func (c *countingHost) Set(key, value string) error {
	c.writes++
	c.bytes += len(key) + len(value)
	return c.fakeHost.Set(key, value)
}

func table(n int, prefix string) map[string]string {
	t := make(map[string]string, n)
	for i := 0; i < n; i++ {
		t[prefix+strconv.Itoa(i)] = "10.0." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
	}
	return t
}

// indexNames lists the names generation g's index in shared data holds.
func indexNames(h *fakeHost, g gen) map[string]bool {
	out := map[string]bool{}
	n, _ := strconv.Atoi(h.kv[g.namesKey()])
	for i := 0; i < n; i++ {
		for name := range segmentNames(h.kv[g.segmentKey(i)]) {
			out[name] = true
		}
	}
	return out
}

// registrar answers the Machine's polls like a registrar of protocol version 2 that
// holds tables by (lineage, revision), serves full tables in pages of pageSize names
// for the snapshots it retains, and answers after= of its lineage with a delta.
type registrar struct {
	lineage  string
	revision uint64
	tables   map[uint64]map[string]string // retained snapshots of lineage
	pageSize int
}

func (r *registrar) answer(t *testing.T, path string) Reply {
	t.Helper()
	_, qs, _ := strings.Cut(path, "?")
	q, err := url.ParseQuery(qs)
	if err != nil {
		t.Fatal(err)
	}
	if q.Has("snapshot") {
		rev, _ := strconv.ParseUint(q.Get("snapshot"), 10, 64)
		tb, ok := r.tables[rev]
		if !ok {
			return Reply{Status: "410", Body: []byte(`{"error":"snapshot_gone"}`)}
		}
		return r.page(tb, rev, q.Get("start"))
	}
	cur := r.tables[r.revision]
	if after, err := strconv.ParseUint(q.Get("after"), 10, 64); err == nil && q.Get("lineage") == r.lineage {
		if after == r.revision {
			return Reply{Status: "304"}
		}
		if from, ok := r.tables[after]; ok {
			ups := map[string]string{}
			var rm []string
			for n, v := range cur {
				if from[n] != v {
					ups[n] = v
				}
			}
			for n := range from {
				if _, ok := cur[n]; !ok {
					rm = append(rm, n)
				}
			}
			return delta(r.lineage, after, r.revision, ups, rm...)
		}
	}
	return r.page(cur, r.revision, "")
}

func (r *registrar) page(tb map[string]string, rev uint64, start string) Reply {
	names := slices.Sorted(maps.Keys(tb))
	i, _ := slices.BinarySearch(names, start)
	end := min(i+r.pageSize, len(names))
	pg := map[string]string{}
	for _, n := range names[i:end] {
		pg[n] = tb[n]
	}
	next := ""
	if end < len(names) {
		next = names[end]
	}
	return full(r.lineage, rev, pg, next)
}

// drive answers the Machine's polls from reg until it holds reg's current table, no
// generation is being emptied, and no poll is wanted; it fails the test after 200 steps.
func drive(t *testing.T, h *fakeHost, m *Machine, reg *registrar, now *int64) {
	t.Helper()
	for step := 0; step < 200; step++ {
		if m.Revision() == reg.revision && m.Lineage() == reg.lineage && !m.Assembling() && !m.Emptying() && !m.needFull && m.Loaded() {
			return
		}
		step1(t, h, m, reg, now)
	}
	t.Fatalf("the sync did not reach revision %d of %s:\n%s", reg.revision, reg.lineage, strings.Join(h.logs, "\n"))
}

// step1 answers the poll in flight, or ticks a second on when there is none or the
// registrar holds it.
func step1(t *testing.T, h *fakeHost, m *Machine, reg *registrar, now *int64) {
	t.Helper()
	if m.inFlight {
		// A poll that is up to date is held by the registrar: time goes on meanwhile.
		if r := reg.answer(t, h.sent[len(h.sent)-1]); r.Status != "304" {
			m.Answer(*now, r)
			return
		}
	}
	*now += sec
	m.Tick(*now)
}

// loadedOld gives a Machine that has loaded a first table of 100 names (pages of 30)
// from a registrar, and the host time reached.
func loadedOld(t *testing.T) (*fakeHost, *Machine, *registrar, map[string]string, int64) {
	t.Helper()
	h := newFakeHost()
	now := int64(0)
	old := table(100, "o")
	reg := &registrar{lineage: "L", revision: 1, tables: map[uint64]map[string]string{1: old}, pageSize: 30}
	m := New(testCfg, Identity{}, h, 1)
	drive(t, h, m, reg, &now)
	return h, m, reg, old, now
}

// TestOneChangeCostsOneSegment: with 20,000 names, adding, changing or removing one
// name writes a bounded number of bytes (at most a segment plus its own keys),
// whatever the table's size.
func TestOneChangeCostsOneSegment(t *testing.T) {
	for _, n := range []int{100, 20_000} {
		h := &countingHost{fakeHost: newFakeHost()}
		m := New(testCfg, Identity{}, h, 1)
		m.Tick(0)
		m.Answer(0, full("L", 1, table(n, "n"), ""))
		rev := uint64(1)
		for i, d := range []Reply{
			delta("L", 1, 2, map[string]string{"new-1": "10.9.9.9"}),
			delta("L", 2, 3, map[string]string{"n7": "10.9.9.8"}),
			delta("L", 3, 4, nil, "n8"),
		} {
			h.writes, h.bytes = 0, 0
			m.Answer(0, d)
			rev++
			if m.Revision() != rev {
				t.Fatalf("%d names, change %d not applied:\n%s", n, i, strings.Join(h.logs, "\n"))
			}
			if h.bytes > SegmentBytes+512 || h.writes > 6 { // dirty mark, segment, route, table, revision, polled
				t.Errorf("%d names, change %d: %d writes, %d bytes; want at most a segment (%d) and a few keys", n, i, h.writes, h.bytes, SegmentBytes)
			}
		}
	}
}

// TestEveryDeathLeavesAWholeTable: whichever write a poller dies at — during a delta,
// a full table of one page or of several, a new lineage — routers see a complete
// table (for a full table: exactly the old or exactly the new one), and a new poller
// (restart) or the same one going on after the failed write reaches the registrar's
// table, with every routed name listed in the current generation's index and every
// other generation emptied.
func TestEveryDeathLeavesAWholeTable(t *testing.T) {
	long := strings.Repeat("o", 40) // 300 names of 43 bytes: four segments' worth, a page of 1000 spans them
	old := table(300, long)
	old["a"] = "10.1.0.1"
	nextFull := table(250, long)
	nextFull["b"] = "10.2.0.2"
	nextFull["a"] = "10.1.0.9"
	final := map[string]string{"a": "10.1.0.1", "e": "10.5.0.6", long + "3": "10.0.0.3"}
	type update struct {
		name     string
		lineage  string
		next     map[string]string
		pageSize int
		atomic   bool // a full table: routers see old or next, nothing between
	}
	updates := []update{
		{"delta", "L", nextFull, 1000, false},
		{"full table in one page", "M", nextFull, 1000, true},
		{"full table in pages", "M", nextFull, 40, true},
	}
	for _, u := range updates {
		for budget := 0; ; budget++ {
			died := false
			for _, restart := range []bool{true, false} {
				h := newFakeHost()
				now := int64(0)
				reg := &registrar{lineage: "L", revision: 1, tables: map[uint64]map[string]string{1: old}, pageSize: u.pageSize}
				m := New(testCfg, Identity{}, h, 1)
				drive(t, h, m, reg, &now)
				if !maps.Equal(h.routes(), old) {
					t.Fatalf("the first table is not what routers see")
				}
				if u.lineage != reg.lineage {
					reg.lineage, reg.tables = u.lineage, map[uint64]map[string]string{}
				}
				reg.revision = 2
				reg.tables[2] = u.next
				// Drive the update with at most budget writes.
				h.budget = budget
				for step := 0; step < 50 && h.budget != 0 && m.Revision() != 2; step++ {
					step1(t, h, m, reg, &now)
					if got := h.routes(); u.atomic && !maps.Equal(got, old) && !maps.Equal(got, u.next) {
						t.Fatalf("%s: after %d writes routers see %d names, neither the old table nor the new", u.name, budget-h.budget, len(got))
					}
				}
				if h.budget != 0 {
					if !maps.Equal(h.routes(), u.next) {
						t.Fatalf("%s: completed, but routers see %d names, want %d", u.name, len(h.routes()), len(u.next))
					}
					continue
				}
				died = true
				h.budget = -1
				if restart {
					m = New(testCfg, Identity{}, h, now)
				}
				reg.revision = 3
				reg.tables[3] = final
				drive(t, h, m, reg, &now)
				if got := h.routes(); !maps.Equal(got, final) {
					t.Fatalf("%s: died after %d writes (restart %v): routers see %v, want %v\n%s", u.name, budget, restart, got, final, strings.Join(h.logs, "\n"))
				}
				cur := genOf(h.kv[CurrentKey])
				listed := indexNames(h, cur)
				for name := range h.routes() {
					if !listed[name] {
						t.Fatalf("%s: %s routes but the index of generation %s does not list it", u.name, name, cur)
					}
				}
				for k, v := range h.kv {
					if strings.HasPrefix(k, "switchyard/"+string(cur.other())+"/") && v != "" {
						t.Fatalf("%s: died after %d writes (restart %v): generation %s not emptied: %s = %q", u.name, budget, restart, cur.other(), k, v)
					}
				}
			}
			if !died {
				if budget < 3 {
					t.Fatalf("%s finished within %d writes; the test expects more", u.name, budget)
				}
				break
			}
		}
	}
}

// TestRegistrarGoneMidPages: a registrar that stops serving the snapshot (410), resets
// or sends garbage in the middle of the pages leaves routers on the complete old table;
// the load is resumed (reset) or emptied and started over (410, garbage).
func TestRegistrarGoneMidPages(t *testing.T) {
	for _, fault := range []string{"410", "reset", "garbage"} {
		t.Run(fault, func(t *testing.T) {
			h, m, reg, old, now := loadedOld(t)
			next := table(120, "n")
			reg.lineage, reg.revision, reg.tables = "M", 7, map[uint64]map[string]string{7: next}
			m.Answer(now, reg.answer(t, "/v1/routes?v=2"))      // the first page, given to the long poll
			m.Answer(now, reg.answer(t, h.sent[len(h.sent)-1])) // the second
			switch fault {
			case "410":
				m.Answer(now, Reply{Status: "410", Body: []byte(`{"error":"snapshot_gone"}`)})
			case "reset":
				m.Answer(now, Reply{Failed: &CallFailure{Status: "reset"}})
			case "garbage":
				m.Answer(now, ok(`{"kind":"full","lineage":"M","revision":7,"routes":{"n9":`))
			}
			if !maps.Equal(h.routes(), old) {
				t.Fatalf("routers see %d names, not the old table", len(h.routes()))
			}
			if fault == "reset" != m.Assembling() {
				t.Fatalf("assembling %v after %s", m.Assembling(), fault)
			}
			reg.revision, reg.tables[8] = 8, table(90, "p")
			if fault == "reset" {
				delete(reg.tables, 8) // the snapshot 7 is still served; finish it
				reg.revision = 7
			}
			drive(t, h, m, reg, &now)
			if !maps.Equal(h.routes(), reg.tables[reg.revision]) {
				t.Fatalf("routers see %d names, want the %d of revision %d", len(h.routes()), len(reg.tables[reg.revision]), reg.revision)
			}
			for k, v := range h.kv {
				if strings.HasPrefix(k, "switchyard/a/") && v != "" {
					t.Fatalf("generation a not emptied: %s = %q", k, v)
				}
			}
		})
	}
}

// TestFullTableWaitsForTheEmptying: a full table wanted while the other generation is
// within its grace or being emptied is asked for only once it is clean, and one sent
// to a delta poll meanwhile is left for then; deltas go on meanwhile.
func TestFullTableWaitsForTheEmptying(t *testing.T) {
	h := newFakeHost()
	m := started(t, h)
	m.Answer(0, full("L", 1, table(50, "a"), ""))
	m.Answer(0, full("M", 1, table(50, "b"), "")) // a new lineage: b is current, a retired
	m.Answer(0, delta("M", 1, 2, map[string]string{"c1": "10.3.3.3"}))
	if m.Revision() != 2 || h.routes()["c1"] != "10.3.3.3" {
		t.Fatalf("a delta was not applied while a generation waits to be emptied")
	}
	sent := len(h.sent)
	m.Answer(0, full("N", 1, table(50, "c"), ""))
	if len(h.sent) != sent || m.Lineage() != "M" || h.countLogs("waiting until generation a") != 1 {
		t.Fatalf("a full table was taken, or polled for, before generation a was emptied:\n%s", strings.Join(h.logs, "\n"))
	}
	m.Tick(RetireGraceSeconds * sec / 2)
	if len(h.sent) != sent {
		t.Fatalf("polled within the grace")
	}
	m.Tick(RetireGraceSeconds * sec)
	if q := h.lastQuery(t); len(h.sent) != sent+1 || q.Has("after") {
		t.Fatalf("after the emptying the poll is %v", h.sent[sent:])
	}
}

// TestKeysBoundedOverReloads: 100 full tables of 1,000 names, each changing every
// target and a tenth of the names, leave shared data with at most one key per name
// ever seen per generation plus the fixed keys, and bytes bounded by two tables.
func TestKeysBoundedOverReloads(t *testing.T) {
	h := newFakeHost()
	now := int64(0)
	reg := &registrar{lineage: "L", tables: map[uint64]map[string]string{}, pageSize: 300}
	m := New(testCfg, Identity{}, h, 1)
	names := map[string]bool{}
	maxBytes := 0
	for i := 0; i < 100; i++ {
		tb := map[string]string{}
		for j := 0; j < 1000; j++ {
			n := "n" + strconv.Itoa(j+(i%10)*100)
			tb[n] = "10.1." + strconv.Itoa(i) + "." + strconv.Itoa(j&255)
			names[n] = true
		}
		reg.lineage, reg.revision, reg.tables = "L"+strconv.Itoa(i), uint64(i), map[uint64]map[string]string{uint64(i): tb}
		drive(t, h, m, reg, &now)
		if !maps.Equal(h.routes(), tb) {
			t.Fatalf("reload %d: routers see %d names", i, len(h.routes()))
		}
		b := 0
		for k, v := range h.kv {
			b += len(k) + len(v)
		}
		maxBytes = max(maxBytes, b)
	}
	// 1,900 names seen; per generation a route key each, a segment per ~5 KiB of names.
	if limit := 2*len(names) + 2*(len(names)*8/SegmentBytes+2) + 10; len(h.kv) > limit {
		t.Errorf("%d keys after 100 reloads of %d distinct names, want at most %d", len(h.kv), len(names), limit)
	}
	tableBytes := 1000 * (len("switchyard/a/route/n1999") + len("10.1.99.255") + 6) // value, index line
	if maxBytes > 2*tableBytes+2*1900*len("switchyard/a/route/n1999")+4*SegmentBytes {
		t.Errorf("shared data peaked at %d bytes; two tables of 1,000 names are %d", maxBytes, 2*tableBytes)
	}
}

// TestMigrateFirstLayout: shared data written by the first layout (the previous
// filter; testdata/first-layout.json was written by its sync) is read by routers at
// once through CurrentKey, replaced by a full table switched atomically, and its keys
// emptied after the grace.
func TestMigrateFirstLayout(t *testing.T) {
	raw, err := os.ReadFile("testdata/first-layout.json")
	if err != nil {
		t.Fatal(err)
	}
	h := newFakeHost()
	if err := json.Unmarshal(raw, &h.kv); err != nil {
		t.Fatal(err)
	}
	old := map[string]string{}
	for k, v := range h.kv {
		if n, ok := strings.CutPrefix(k, LegacyRouteKeyPrefix); ok && v != "" {
			old[n] = v
		}
	}
	if len(old) < 100 {
		t.Fatalf("the fixture holds %d routes", len(old))
	}
	m := New(testCfg, Identity{}, h, 1)
	if !maps.Equal(h.routes(), old) || m.Size() != len(old) || m.Revision() != 7 || m.Lineage() != "L" {
		t.Fatalf("routers see %d names (size %d, revision %d %q), want the first layout's %d", len(h.routes()), m.Size(), m.Revision(), m.Lineage(), len(old))
	}
	m.Tick(0)
	if q := h.lastQuery(t); q.Has("after") {
		t.Fatalf("the first poll %v asks for a delta, want a full table", q)
	}
	next := maps.Clone(old)
	next["new-name"] = "10.7.7.7"
	m.Answer(0, full("L", 8, next, ""))
	if !maps.Equal(h.routes(), next) || h.kv[CurrentKey] != "switchyard/a/route/" {
		t.Fatalf("routers see %d names from %q", len(h.routes()), h.kv[CurrentKey])
	}
	m.Tick(RetireGraceSeconds * sec)
	for k, v := range h.kv {
		if !strings.HasPrefix(k, "switchyard/a/") && v != "" && k != CurrentKey && k != RevisionKey && k != PolledKey {
			t.Errorf("left by the first layout: %s = %q", k, v)
		}
	}
	// A poller started now finds nothing of the first layout.
	m2 := New(testCfg, Identity{}, h, 10*sec)
	if m2.Emptying() || m2.Revision() != 8 || m2.Size() != len(next) {
		t.Errorf("a new poller: emptying %v revision %d size %d", m2.Emptying(), m2.Revision(), m2.Size())
	}
}

// TestParseGenTable: every value the poller writes parses back; values that mean
// nothing are refused.
func TestParseGenTable(t *testing.T) {
	for _, gt := range []genRecord{
		{phase: genClean},
		{phase: genRetired},
		{phase: genLoading, revision: 4, lineage: "L-1", count: 30, next: "m.example"},
		{phase: genLoading, revision: 0, lineage: "", count: 0, next: ""},
		{phase: genLive, revision: 9, lineage: "x", count: 3, listed: 5},
		{phase: genLive, revision: 9, lineage: "x", count: 3, listed: 5, dirty: true},
	} {
		got, ok := parseGenRecord(gt.String())
		if !ok || got != gt {
			t.Errorf("%q parsed as %+v (ok %v)", gt.String(), got, ok)
		}
	}
	for _, bad := range []string{"live", "live 1 L 2", "live x L 2 3", "live 1 L 2 3 clean", "loading 1 L -2 a", "loading 1 L 2 bad name", "retired 3", "junk"} {
		if _, ok := parseGenRecord(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestPollerKilledMidStreamResumes: a poller that dies between two pages leaves routers
// on the old table; the next one asks for the page after the last one written, of the
// same snapshot, and switches when it has the rest.
func TestPollerKilledMidStreamResumes(t *testing.T) {
	h, m, reg, old, now := loadedOld(t)
	next := table(100, "n")
	reg.lineage, reg.revision, reg.tables = "M", 4, map[uint64]map[string]string{4: next}
	m.Answer(now, reg.answer(t, "/v1/routes?v=2"))
	m.Answer(now, reg.answer(t, h.sent[len(h.sent)-1]))
	// The poller dies with its third page in flight.
	m2 := New(testCfg, Identity{}, h, now)
	if !maps.Equal(h.routes(), old) || !m2.Assembling() || h.countLogs("resuming the full table at revision 4") != 1 {
		t.Fatalf("assembling %v, routers see %d names", m2.Assembling(), len(h.routes()))
	}
	m2.Tick(now)
	if q := h.lastQuery(t); q.Get("snapshot") != "4" || q.Get("start") != slices.Sorted(maps.Keys(next))[60] {
		t.Fatalf("the new poller asks %v, want the third page of snapshot 4", q)
	}
	drive(t, h, m2, reg, &now)
	if !maps.Equal(h.routes(), next) || m2.Size() != 100 {
		t.Fatalf("routers see %d names, size %d", len(h.routes()), m2.Size())
	}
}

// TestTakeOverFromAnotherPoller: a Machine whose view is stale (another poller
// switched the table since it started) writes nothing into the generation routers now
// read: it adopts shared data, then goes on from there.
func TestTakeOverFromAnotherPoller(t *testing.T) {
	h := newFakeHost()
	m1 := started(t, h)
	m1.Answer(0, full("L", 1, table(20, "a"), ""))
	m2 := New(testCfg, Identity{}, h, 0)           // reads generation a
	m1.Answer(0, full("M", 1, table(20, "b"), "")) // m1 switches to b
	want := h.routes()
	m2.Tick(0)
	m2.Answer(0, full("N", 5, table(20, "c"), "")) // asked by m2 for a table it would load into b
	if !maps.Equal(h.routes(), want) || h.countLogs("another poller switched the table") != 1 {
		t.Fatalf("the stale poller changed what routers read (%d names)", len(h.routes()))
	}
	if m2.Lineage() != "M" || !m2.Emptying() {
		t.Fatalf("the stale poller did not adopt shared data: lineage %q emptying %v", m2.Lineage(), m2.Emptying())
	}
}
