package store

import (
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// weighted is a set of three targets: two active (90/10) and one draining.
func weighted() []Target {
	return []Target{
		{Address: "10.0.0.1:8080", Weight: 90, State: StateActive},
		{Address: "10.0.0.2:8080", Weight: 10, State: StateActive},
		{Address: "green.internal", Weight: 1, State: StateDraining},
	}
}

const weightedRoute = "*10.0.0.1:8080/90,10.0.0.2:8080/10,green.internal/1/d"

// Data written before target sets (a data file and a log record of one address per
// name) loads unchanged: one active target of weight 1, routed by its plain address.
// Sets written after load back the same from the log and, after a compaction, from
// the data file, where a one-target server is still written in the old form.
func TestTargetsOldDataLoadsUnchanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "servers.json")
	data := `{"revision": 3, "lineage": "0123456789abcdef0123456789abcdef", "servers": [
{"host":"web-1","ipAddress":"10.1.2.3:8080","serviceName":"logs","updatedAt":"2026-11-01T10:00:00Z"}
]}
`
	rec := `{"rev":4,"ops":[{"host":"web-2","server":{"host":"web-2","ipAddress":"web-2.internal","serviceName":"logs","updatedAt":"2026-11-02T10:00:00Z"}}]}`
	line := fmt.Sprintf("%08x %s\n", crc32.Checksum([]byte(rec), castagnoli), rec)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(segmentName(path, 4), []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	adoptData(t, path, "0123456789abcdef0123456789abcdef", 4)
	s := openT(t, path, EmbeddedOptions{CompactAt: 1})
	for name, addr := range map[string]string{"web-1": "10.1.2.3:8080", "web-2": "web-2.internal"} {
		sv, ok := s.Current().Get(name)
		if !ok || sv.Targets != nil || sv.Target != addr || sv.Route() != addr ||
			!reflect.DeepEqual(sv.TargetList(), []Target{{Address: addr, Weight: 1, State: StateActive}}) {
			t.Fatalf("%s loaded as %+v (route %q), want one active target %s of weight 1", name, sv, sv.Route(), addr)
		}
	}
	if s.Current().Revision() != 4 {
		t.Fatalf("revision %d, want 4", s.Current().Revision())
	}
	sv := NewServer("web-3", "shop", weighted())
	if out := s.Write(Change{Name: "web-3", Server: &sv}); out.Err != nil || !out.Changed {
		t.Fatalf("write a set: %+v", out)
	}
	check := func(when string, s *Embedded) {
		t.Helper()
		got, _ := s.Current().Get("web-3")
		if got.Target != "10.0.0.1:8080" || !reflect.DeepEqual(got.Targets, weighted()) || got.Route() != weightedRoute {
			t.Fatalf("%s: web-3 is %+v (route %q)", when, got, got.Route())
		}
		if one, _ := s.Current().Get("web-1"); one.Targets != nil {
			t.Fatalf("%s: web-1 is %+v, want no targets (one active target of weight 1)", when, one)
		}
	}
	check("written", s)
	s.Close()
	// The write was compacted into the data file (compact at 1 byte); web-1 is in its
	// old form there.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"web-3"`) {
		t.Fatalf("the write was not compacted into the data file:\n%s", b)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, `"web-1"`) && strings.Contains(l, "targets") || strings.Contains(l, `"web-3"`) && !strings.Contains(l, `"targets":[{"address":"10.0.0.1:8080","weight":90,"state":"active"}`) {
			t.Fatalf("data file line %s", l)
		}
	}
	check("reopened", openT(t, path))
}

// Reading a stored set applies the write rules: a set no write could make is refused
// at open, naming it.
func TestTargetsBadStoredSetRefused(t *testing.T) {
	for _, c := range []struct{ targets, want string }{
		{`[]`, "targets: 0 targets"},
		{`[{"address":"10.0.0.1","weight":101,"state":"active"}]`, "targets[0].weight"},
		{`[{"address":"10.0.0.1","weight":1,"state":"gone"}]`, "targets[0].state"},
		{`[{"address":"10.0.0.1","weight":1,"state":"active"},{"address":"10.0.0.1","weight":1,"state":"active"}]`, "appears twice"},
		{`[{"address":"10.0.0.2","weight":1,"state":"active"}]`, "is not the first active target"},
		{`[{"address":"10.0.0.1","weight":1,"state":"active","health":"up"}]`, "unknown field"},
	} {
		path := filepath.Join(t.TempDir(), "servers.json")
		data := `{"revision": 1, "lineage": "0123456789abcdef0123456789abcdef", "servers": [
{"host":"web-1","ipAddress":"10.0.0.1","targets":` + c.targets + `,"serviceName":"logs"}
]}`
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path, EmbeddedOptions{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Open = %v, want a refusal saying %q", c.targets, err, c.want)
		}
	}
}

// An Update reads and sets in one step: concurrent one-target changes of one server
// all land, none lost; an Update's error fails the write and changes nothing.
func TestTargetsUpdateIsOneStep(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "servers.json"))
	sv := NewServer("web", "shop", weighted())
	s.Write(Change{Name: "web", Server: &sv})
	const n = 40
	done := make(chan WriteResult, n)
	for i := range n {
		go func() {
			done <- s.Write(Change{Name: "web", Update: func(old *Server) (*Server, error) {
				ts := append([]Target(nil), old.TargetList()...)
				ts = append(ts[:len(ts):len(ts)], Target{Address: fmt.Sprintf("10.0.1.%d", i+1), Weight: 1, State: StateActive})
				nv := NewServer(old.Name, old.Service, ts)
				return &nv, nil
			}})
		}()
	}
	for range n {
		if out := <-done; out.Err != nil {
			t.Fatal(out.Err)
		}
	}
	got, _ := s.Current().Get("web")
	if len(got.Targets) != 3+n {
		t.Fatalf("%d targets after %d concurrent additions to 3, want %d", len(got.Targets), n, 3+n)
	}
	rev := s.Current().Revision()
	refuse := fmt.Errorf("refused")
	out := s.Write(Change{Name: "other", Server: &sv}, Change{Name: "web", Update: func(*Server) (*Server, error) { return nil, refuse }})
	if out.Err != refuse || s.Current().Revision() != rev || s.Current().Len() != 1 {
		t.Fatalf("a write whose Update refuses: %+v, revision %d → %d, %d servers", out, rev, s.Current().Revision(), s.Current().Len())
	}
}

// A write never stores what the loader would refuse: a set that breaks the rules
// fails the write, and nothing changes.
func TestTargetsWriteChecksSet(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "servers.json"))
	for _, sv := range []Server{
		{Target: "10.0.0.2", Targets: weighted()},
		{Target: "10.0.0.1", Targets: []Target{{Address: "10.0.0.1", Weight: 1, State: "on"}}},
		{Target: "10.0.0.1", Targets: []Target{}},
	} {
		if out := s.Write(Change{Name: "web", Server: &sv}); out.Err == nil || s.Current().Revision() != 0 {
			t.Errorf("writing %+v: %+v, revision %d; want refused", sv, out, s.Current().Revision())
		}
	}
}
