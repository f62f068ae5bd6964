package main

import (
	"errors"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"switchyard/internal/pluginconfig"
)

func TestDiff(t *testing.T) {
	tests := []struct {
		name                    string
		live, next              map[string]string
		writes                  map[string]string
		added, changed, removed int
	}{
		{"first table", map[string]string{}, map[string]string{"a": "10.0.0.1", "b": "10.0.0.2"},
			map[string]string{"a": "10.0.0.1", "b": "10.0.0.2"}, 2, 0, 0},
		{"nothing changed", map[string]string{"a": "10.0.0.1"}, map[string]string{"a": "10.0.0.1"},
			map[string]string{}, 0, 0, 0},
		{"changed target", map[string]string{"a": "10.0.0.1"}, map[string]string{"a": "10.0.0.9"},
			map[string]string{"a": "10.0.0.9"}, 0, 1, 0},
		{"removed name written empty", map[string]string{"a": "10.0.0.1", "b": "10.0.0.2"}, map[string]string{"a": "10.0.0.1"},
			map[string]string{"b": ""}, 0, 0, 1},
		{"all three", map[string]string{"a": "1.1.1.1", "b": "2.2.2.2"}, map[string]string{"a": "1.1.1.2", "c": "3.3.3.3"},
			map[string]string{"a": "1.1.1.2", "b": "", "c": "3.3.3.3"}, 1, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writes := map[string]string{}
			a, c, r, err := Diff(tt.live, tt.next, func(n, v string) error { writes[n] = v; return nil })
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(writes, tt.writes) || a != tt.added || c != tt.changed || r != tt.removed {
				t.Errorf("writes %v (+%d ~%d -%d), want %v (+%d ~%d -%d)", writes, a, c, r, tt.writes, tt.added, tt.changed, tt.removed)
			}
		})
	}
}

func TestDiffStopsAtFirstError(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	_, _, _, err := Diff(map[string]string{}, map[string]string{"a": "1.1.1.1", "b": "2.2.2.2"}, func(string, string) error {
		calls++
		return boom
	})
	if !errors.Is(err, boom) || calls != 1 {
		t.Errorf("err %v after %d calls, want boom after 1", err, calls)
	}
}

func TestRouteKeyView(t *testing.T) {
	a := routeKeyView("web-1")
	if a != "switchyard/route/web-1" || routeKey("web-1") != a {
		t.Errorf("routeKeyView = %q, routeKey = %q", a, routeKey("web-1"))
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = routeKeyView("some-server-name") }); allocs != 0 {
		t.Errorf("routeKeyView allocates %v times, want 0", allocs)
	}
}

func TestSerializePairs(t *testing.T) {
	got := serializePairs([][2]string{{"content-type", "application/json"}, {"retry-after", "1"}})
	want := "\x02\x00\x00\x00" + "\x0c\x00\x00\x00\x10\x00\x00\x00" + "\x0b\x00\x00\x00\x01\x00\x00\x00" +
		"content-type\x00application/json\x00retry-after\x001\x00"
	if got != want {
		t.Errorf("serializePairs = %q, want %q", got, want)
	}
}

func TestPollPath(t *testing.T) {
	r := pluginconfig.RegistrarConfig{Path: "/v1/routes", WaitSeconds: 30}
	if got := PollPath(r, 0, false); got != "/v1/routes?wait=30" {
		t.Errorf("before the first table: %q", got)
	}
	if got := PollPath(r, 41, true); got != "/v1/routes?after=41&wait=30" {
		t.Errorf("at revision 41: %q", got)
	}
}

// memStore is shared data for the native tests of the table layout: set fails once
// budget writes have been made (budget < 0: never), as a sync VM that dies there.
type memStore struct {
	kv     map[string]string
	budget int
}

var errDied = errors.New("the sync died here")

func (m *memStore) set(key, value string) error {
	if m.budget == 0 {
		return errDied
	}
	m.budget--
	m.kv[key] = value
	return nil
}

func (m *memStore) get(key string) ([]byte, bool) {
	v, ok := m.kv[key]
	return []byte(v), ok
}

// routes gives the table the routers see: every non-empty route key.
func (m *memStore) routes() map[string]string {
	out := map[string]string{}
	for k, v := range m.kv {
		if name, ok := strings.CutPrefix(k, routeKeyPrefix); ok && v != "" {
			out[name] = v
		}
	}
	return out
}

// load writes a whole table as a sync does (table, then revision).
func (m *memStore) load(t *testing.T, live, next map[string]string, revision uint64) {
	t.Helper()
	if _, _, _, err := WriteTable(live, next, m.set); err != nil {
		t.Fatal(err)
	}
	if err := m.set(revisionKey, strconv.FormatUint(revision, 10)); err != nil {
		t.Fatal(err)
	}
}

func copyTable(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func TestRecoverTable(t *testing.T) {
	tests := []struct {
		name   string
		kv     map[string]string
		want   map[string]string
		rev    uint64
		loaded bool
	}{
		{"empty store", map[string]string{}, map[string]string{}, 0, false},
		{"revision without index", map[string]string{revisionKey: "4", routeKeyPrefix + "a": "10.0.0.1"}, map[string]string{}, 4, true},
		{"indexed names", map[string]string{revisionKey: "7", namesKey: "a\nb\n",
			routeKeyPrefix + "a": "10.0.0.1", routeKeyPrefix + "b": "[::1]:9"},
			map[string]string{"a": "10.0.0.1", "b": "[::1]:9"}, 7, true},
		{"removed name skipped", map[string]string{revisionKey: "2", namesKey: "a\nb\n",
			routeKeyPrefix + "a": "10.0.0.1", routeKeyPrefix + "b": ""},
			map[string]string{"a": "10.0.0.1"}, 2, true},
		{"indexed name never written", map[string]string{revisionKey: "2", namesKey: "a\nz\n", routeKeyPrefix + "a": "10.0.0.1"},
			map[string]string{"a": "10.0.0.1"}, 2, true},
		{"junk index lines skipped", map[string]string{revisionKey: "2", namesKey: "\n../x\na b\na\n", routeKeyPrefix + "a": "10.0.0.1"},
			map[string]string{"a": "10.0.0.1"}, 2, true},
		{"bad revision is no table", map[string]string{revisionKey: "x", namesKey: "a\n", routeKeyPrefix + "a": "10.0.0.1"},
			map[string]string{"a": "10.0.0.1"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &memStore{kv: tt.kv, budget: -1}
			got := RecoverTable(m.get)
			if !reflect.DeepEqual(got.Live, tt.want) || got.Revision != tt.rev || got.Loaded != tt.loaded {
				t.Errorf("RecoverTable = %+v, want %v at %d (loaded %v)", got, tt.want, tt.rev, tt.loaded)
			}
		})
	}
}

func TestWriteTableKeepsIndex(t *testing.T) {
	m := &memStore{kv: map[string]string{}, budget: -1}
	steps := []map[string]string{
		{"a": "10.0.0.1", "b": "10.0.0.2"},
		{"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3"}, // grows
		{"a": "10.0.0.9", "b": "10.0.0.2", "c": "10.0.0.3"}, // changes only
		{"c": "10.0.0.3"}, // shrinks
		{},
	}
	live := map[string]string{}
	for i, next := range steps {
		m.load(t, live, copyTable(next), uint64(i+1))
		live = copyTable(next)
		var names []string
		for _, n := range strings.Split(m.kv[namesKey], "\n") {
			if n != "" {
				names = append(names, n)
			}
		}
		if len(names) != len(next) {
			t.Errorf("step %d: index %q, want exactly the %d names of %v", i, m.kv[namesKey], len(next), next)
		}
		if got := RecoverTable(m.get); !reflect.DeepEqual(got.Live, next) || got.Revision != uint64(i+1) {
			t.Errorf("step %d: a new sync would recover %v at %d, want %v", i, got.Live, got.Revision, next)
		}
	}
}

// TestWriteTableSurvivesDeathAtEveryWrite: whichever write the sync dies at, a new
// sync (RecoverTable) sees every name that routes, and its first WriteTable leaves
// exactly the registrar's current table routable. The same holds when the same sync
// retries after a failed write (its live table is then marked uncertain).
func TestWriteTableSurvivesDeathAtEveryWrite(t *testing.T) {
	old := map[string]string{"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3"}
	next := map[string]string{"a": "10.0.0.9", "c": "10.0.0.3", "d": "10.0.0.4", "e": "10.0.0.5"}
	final := map[string]string{"a": "10.0.0.1", "e": "10.0.0.6"} // the registrar moved on meanwhile
	for budget := 0; ; budget++ {
		for _, restart := range []bool{true, false} {
			m := &memStore{kv: map[string]string{}, budget: -1}
			m.load(t, map[string]string{}, copyTable(old), 1)
			live := copyTable(old)
			m.budget = budget
			_, _, _, err := WriteTable(live, copyTable(next), m.set)
			if err == nil {
				if budget < 6 {
					t.Fatalf("WriteTable finished with a budget of %d writes; the test expects more", budget)
				}
				return
			}
			m.budget = -1
			if restart {
				rec := RecoverTable(m.get)
				for name := range m.routes() {
					if _, ok := rec.Live[name]; !ok {
						t.Fatalf("died after %d writes: %s routes but a new sync does not know it (index %q)", budget, name, m.kv[namesKey])
					}
				}
				live = rec.Live
			}
			if _, _, _, err := WriteTable(live, copyTable(final), m.set); err != nil {
				t.Fatal(err)
			}
			if got := m.routes(); !reflect.DeepEqual(got, final) {
				t.Fatalf("died after %d writes (restart %v): routers see %v, want %v", budget, restart, got, final)
			}
		}
	}
}

func TestEncodeNames(t *testing.T) {
	got := strings.Split(strings.TrimSuffix(EncodeNames(map[string]string{"a": "1", "b": "2"}, map[string]string{"b": "3", "c": "4"}), "\n"), "\n")
	sort.Strings(got)
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(got, want) {
		t.Errorf("EncodeNames = %q, want each of %q once", got, want)
	}
	if EncodeNames(map[string]string{}) != "" {
		t.Errorf("an empty table has a non-empty index")
	}
}
