package store

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A table written, closed and opened again is the same table at the same revision,
// and the revision keeps growing from there, also after the table was emptied.
func TestStoreReopenKeepsDataAndRevision(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "servers.json")
	s, err := Open(path, EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the data file exists before the first write (stat: %v)", err)
	}
	writes := []Change{
		{Name: "web-1", Server: &Server{Target: "10.0.0.1", Service: "logs"}},
		{Name: "web-2", Server: &Server{Target: "10.0.0.2", Service: "logs"}},
		{Name: "web-1", MustExist: true},
	}
	for _, c := range writes {
		if out := s.Write(c); out.Err != nil {
			t.Fatal(out.Err)
		}
	}
	s.Close()
	if out := s.Write(writes[0]); out.Err != ErrClosed {
		t.Fatalf("write after Close: %v, want errClosed", out.Err)
	}

	s2, err := Open(path, EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	snap := s2.Current()
	if sv, _ := snap.Get("web-2"); snap.Revision() != 3 || snap.Len() != 1 || sv.Target != "10.0.0.2" {
		t.Fatalf("reopened: revision %d, %d servers, web-2 %+v", snap.Revision(), snap.Len(), sv)
	}
	if out := s2.Write(Change{Name: "web-2", MustExist: true}); out.Err != nil || out.Revision != 4 {
		t.Fatalf("delete after reopen: %+v", out)
	}
}

func TestStoreRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "servers.json")
	if err := os.WriteFile(path, []byte(`{"revision": 5, "servers": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := []string{"servers.json.tmp-123", "servers.json.tmp-"}
	keep := []string{"other.json.tmp-1", "servers.json.bak"}
	for _, f := range append(stale, keep...) {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("{half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	s, err := Open(path, EmbeddedOptions{Options: Options{Log: slog.New(slog.NewTextHandler(&logs, nil))}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := strings.Count(logs.String(), "removed a stale temporary file"); n != len(stale) {
		t.Errorf("reported %d removals, want %d (%v):\n%s", n, len(stale), stale, logs.String())
	}
	for _, f := range stale {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s survived the start", f)
		}
	}
	for _, f := range keep {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s was removed but is not ours: %v", f, err)
		}
	}
	if s.Current().Revision() != 5 {
		t.Errorf("revision %d, want 5", s.Current().Revision())
	}
}

// A data file that is not registrar data stops the start with a message naming the
// file, instead of silently serving an empty table.
func TestStoreRefusesBadDataFile(t *testing.T) {
	cases := []struct{ name, content, want string }{
		{"not JSON", "{half", "not valid registrar data"},
		{"unknown field", `{"revision": 1, "servers": [], "extra": 1}`, "not valid registrar data"},
		{"bad name", `{"revision": 1, "servers": [{"host": "a b", "ipAddress": "10.0.0.1", "serviceName": "x"}]}`, `host "a b"`},
		{"bad address", `{"revision": 1, "servers": [{"host": "a", "ipAddress": "10.0.0.300", "serviceName": "x"}]}`, "ipAddress"},
		{"duplicate host", `{"revision": 1, "servers": [{"host": "a", "ipAddress": "10.0.0.1", "serviceName": "x"}, {"host": "a", "ipAddress": "10.0.0.2", "serviceName": "x"}]}`, "twice"},
		{"null", `null`, "null, not a JSON object"},
		{"empty object", `{}`, `"revision" is missing`},
		{"no servers", `{"revision": 5}`, `"servers" is missing`},
		{"servers null", `{"revision": 5, "servers": null}`, "servers is null, not an array"},
		{"trailing data", `{"revision": 1, "servers": []} {"revision": 2, "servers": []}`, "more data after the object"},
		{"revision as a string", `{"revision": "5", "servers": []}`, "revision"},
		{"negative revision", `{"revision": -1, "servers": []}`, "whole number"},
		{"server null", `{"revision": 1, "servers": [null]}`, "servers[0]: not a JSON object"},
		{"server without address", `{"revision": 1, "servers": [{"host": "a", "serviceName": "x"}]}`, `servers[0]: "ipAddress" is missing`},
		{"cut short", `{"revision": 1, "servers": [{"host": "a", "ipAddress": "10.0.0.1", "serviceName": "x"}`, "cut short"},
		{"empty file", ``, "cut short"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "servers.json")
			os.WriteFile(path, []byte(c.content), 0o600)
			_, err := Open(path, EmbeddedOptions{})
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open = %v, want an error naming %s and %q", err, path, c.want)
			}
		})
	}
}
