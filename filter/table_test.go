package main

import (
	"errors"
	"reflect"
	"testing"
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
	r := RegistrarConfig{Path: "/v1/routes", WaitSeconds: 30}
	if got := PollPath(r, 0, false); got != "/v1/routes?wait=30" {
		t.Errorf("before the first table: %q", got)
	}
	if got := PollPath(r, 41, true); got != "/v1/routes?after=41&wait=30" {
		t.Errorf("at revision 41: %q", got)
	}
}
