package polling

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// bytesWritten wraps a fakeHost and counts what is written.
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

// indexNames lists the names the index in shared data holds (head + segments).
func indexNames(h *fakeHost) map[string]bool {
	out := map[string]bool{}
	rec := Recover(h)
	for n := range rec.Live {
		out[n] = true
	}
	return out
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

// TestIndexPromiseAtEveryDeath: whichever write a sync dies at — during a delta, a
// full table (with its compaction) or a compaction forced by many removals — a new
// sync (Recover) knows every name that routes, and once the registrar's current table
// reaches it (as a delta from the revision it recovered, or as a full table) routers
// see exactly that table. The same holds when the same sync goes on after a failed
// write.
func TestIndexPromiseAtEveryDeath(t *testing.T) {
	old := table(300, "o") // more than one segment's worth of names with the removals below
	old["a"] = "10.1.0.1"
	type update struct {
		name  string
		reply func() Reply
		next  map[string]string
	}
	nextFull := table(250, "o")
	nextFull["b"] = "10.2.0.2"
	nextFull["a"] = "10.1.0.9"
	deltaUps := map[string]string{"b": "10.2.0.2", "a": "10.1.0.9"}
	var removals []string
	for i := 250; i < 300; i++ {
		removals = append(removals, "o"+strconv.Itoa(i))
	}
	updates := []update{
		{"delta", func() Reply { return delta("L", 1, 2, deltaUps, removals...) }, nextFull},
		{"full table", func() Reply { return full("L", 2, nextFull, "") }, nextFull},
		{"new lineage", func() Reply { return full("M", 1, map[string]string{"c": "10.3.0.3"}, "") }, map[string]string{"c": "10.3.0.3"}},
	}
	final := map[string]string{"a": "10.1.0.1", "e": "10.5.0.6", "o3": "10.0.0.3"}
	for _, u := range updates {
		for budget := 0; ; budget++ {
			died := false
			for _, restart := range []bool{true, false} {
				h := newFakeHost()
				m := New(testCfg, Identity{}, h, 1)
				m.Tick(0)
				m.Answer(0, full("L", 1, old, ""))
				h.budget = budget
				m.Answer(sec, u.reply())
				if h.budget != 0 {
					if !maps.Equal(h.routes(), u.next) {
						t.Fatalf("%s: completed, but routers see %d names, want %d", u.name, len(h.routes()), len(u.next))
					}
					continue
				}
				died = true
				h.budget = -1
				if restart {
					rec := Recover(h)
					for name := range h.routes() {
						if _, ok := rec.Live[name]; !ok {
							t.Fatalf("%s: died after %d writes: %s routes but a new sync does not know it", u.name, budget, name)
						}
					}
					m = New(testCfg, Identity{}, h, 1)
				}
				// The registrar's answer to the sync's next poll.
				m.Tick(100 * sec)
				q := h.lastQuery(t)
				if Recover(h).Dirty && q.Has("after") {
					t.Fatalf("%s: died after %d writes (restart %v): the next poll %v asks for a delta, not for the full table that repairs a half-written update", u.name, budget, restart, q)
				}
				var r Reply
				if q.Get("lineage") == "L" && q.Get("after") == "1" {
					// Everything that changed since revision 1, compacted.
					ups := maps.Clone(final)
					var rm []string
					for _, tb := range []map[string]string{old, u.next} {
						for n := range tb {
							if final[n] == "" && !slices.Contains(rm, n) {
								rm = append(rm, n)
							}
						}
					}
					r = delta("L", 1, 3, ups, rm...)
				} else {
					r = full("L", 3, final, "")
				}
				m.Answer(100*sec, r)
				if got := h.routes(); !maps.Equal(got, final) {
					t.Fatalf("%s: died after %d writes (restart %v, poll %v): routers see %v, want %v\n%s", u.name, budget, restart, q, got, final, strings.Join(h.logs, "\n"))
				}
				for name := range h.routes() {
					if !indexNames(h)[name] {
						t.Fatalf("%s: after recovery %s routes but the index does not list it", u.name, name)
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

func TestRecover(t *testing.T) {
	tests := []struct {
		name    string
		kv      map[string]string
		want    map[string]string
		rev     uint64
		lineage string
		loaded  bool
	}{
		{"empty store", map[string]string{}, map[string]string{}, 0, "", false},
		{"segments", map[string]string{StateKey: "7 L1", RevisionKey: "7", HeadKey: "b 2",
			SegmentPrefix + "b/0": "a\nb\n", SegmentPrefix + "b/1": "c\n", SegmentPrefix + "a/0": "stale\n",
			RouteKeyPrefix + "a": "10.0.0.1", RouteKeyPrefix + "b": "", RouteKeyPrefix + "c": "[::1]:9", RouteKeyPrefix + "stale": "10.0.0.9"},
			map[string]string{"a": "10.0.0.1", "b": "", "c": "[::1]:9"}, 7, "L1", true},
		{"first-version store", map[string]string{RevisionKey: "4", LegacyNamesKey: "a\nz\n", RouteKeyPrefix + "a": "10.0.0.1"},
			map[string]string{"a": "10.0.0.1", "z": ""}, 4, "", true},
		{"junk lines skipped", map[string]string{StateKey: "2 ", HeadKey: "a 1", SegmentPrefix + "a/0": "\n../x\na b\na\n", RouteKeyPrefix + "a": "10.0.0.1"},
			map[string]string{"a": "10.0.0.1"}, 2, "", true},
		{"dirty table", map[string]string{StateKey: "5 L dirty", RevisionKey: "5"}, map[string]string{}, 5, "L", true},
		{"dirty table of a version-1 registrar", map[string]string{StateKey: "5  dirty", RevisionKey: "5"}, map[string]string{}, 5, "", true},
		{"bad table key is no table", map[string]string{StateKey: "x L", RevisionKey: "3"}, map[string]string{}, 0, "", false},
		{"bad head ignored", map[string]string{StateKey: "2 L", HeadKey: "c 1", SegmentPrefix + "c/0": "a\n", RouteKeyPrefix + "a": "10.0.0.1"},
			map[string]string{}, 2, "L", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost()
			h.kv = tt.kv
			got := Recover(h)
			if !maps.Equal(got.Live, tt.want) || got.Revision != tt.rev || got.Lineage != tt.lineage || got.Loaded != tt.loaded {
				t.Errorf("Recover = %v at %d %q (loaded %v), want %v at %d %q (loaded %v)", got.Live, got.Revision, got.Lineage, got.Loaded, tt.want, tt.rev, tt.lineage, tt.loaded)
			}
		})
	}
}

// TestLegacyIndexMigrated: a sync that finds a first-version store (one names value)
// resumes it, empties names removed meanwhile, and moves the index to segments.
func TestLegacyIndexMigrated(t *testing.T) {
	h := newFakeHost()
	h.kv = map[string]string{RevisionKey: "4", LegacyNamesKey: "a\nb\n", RouteKeyPrefix + "a": "10.0.0.1", RouteKeyPrefix + "b": "10.0.0.2"}
	m := New(testCfg, Identity{}, h, 1)
	if !m.Loaded() || m.Size() != 2 || h.countLogs("resuming the table already in shared data at revision 4 (2 servers)") != 1 {
		t.Fatalf("loaded %v size %d logs %q", m.Loaded(), m.Size(), h.logs)
	}
	m.Tick(0)
	if q := h.lastQuery(t); q.Get("after") != "4" || q.Has("lineage") {
		t.Fatalf("first poll %q", h.sent[0])
	}
	m.Answer(0, full("L", 6, map[string]string{"a": "10.0.0.1", "c": "10.0.0.3"}, ""))
	want := map[string]string{"a": "10.0.0.1", "c": "10.0.0.3"}
	if got := h.routes(); !maps.Equal(got, want) {
		t.Errorf("routers see %v, want %v", got, want)
	}
	if h.kv[LegacyNamesKey] != "" || !maps.Equal(indexNames(h), map[string]bool{"a": true, "c": true}) {
		t.Errorf("legacy key %q, index %v", h.kv[LegacyNamesKey], indexNames(h))
	}
}

// TestCompactionBoundsTheIndex: removals leave names listed until the index lists more
// than twice the live names plus the slack; then it is compacted, and names that come
// back are listed again.
func TestCompactionBoundsTheIndex(t *testing.T) {
	h := newFakeHost()
	m := New(testCfg, Identity{}, h, 1)
	m.Tick(0)
	m.Answer(0, full("L", 1, map[string]string{"keep": "10.0.0.1"}, ""))
	rev := uint64(1)
	for i := 0; i < 3*compactSlack; i++ {
		name := "n" + strconv.Itoa(i)
		m.Answer(0, delta("L", rev, rev+1, map[string]string{name: "10.0.0.2"}))
		m.Answer(0, delta("L", rev+1, rev+2, nil, name))
		rev += 2
	}
	if listed := len(indexNames(h)); listed > 2*1+compactSlack+1 {
		t.Errorf("the index lists %d names for 1 live name", listed)
	}
	m.Answer(0, delta("L", rev, rev+1, map[string]string{"n0": "10.0.0.3"}))
	if !indexNames(h)["n0"] || h.routes()["n0"] != "10.0.0.3" || m.Size() != 2 {
		t.Errorf("a name that came back is not listed (routes %v)", h.routes())
	}
}

// TestFullTableCompactsOnlyWhenNeeded: a full table that removes names compacts the
// index to the table; one that only adds does not rewrite it.
func TestFullTableCompactsOnlyWhenNeeded(t *testing.T) {
	h := &countingHost{fakeHost: newFakeHost()}
	m := New(testCfg, Identity{}, h, 1)
	m.Tick(0)
	m.Answer(0, full("L", 1, table(3000, "n"), ""))
	if head := h.kv[HeadKey]; head[0] != 'a' {
		t.Fatalf("head %q after the first table, want generation a (no compaction)", head)
	}
	m.Answer(0, full("L", 2, table(2000, "n"), ""))
	if head := h.kv[HeadKey]; head[0] != 'b' || len(indexNames(h.fakeHost)) != 2000 {
		t.Errorf("head %q, index of %d names after 1,000 removals, want generation b with 2000", head, len(indexNames(h.fakeHost)))
	}
	if seg := h.kv[SegmentPrefix+"a/0"]; seg != "" {
		t.Errorf("the old generation's segment still holds %d bytes", len(seg))
	}
}
