package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// A table written, closed and opened again is the same table at the same revision,
// and the revision keeps growing from there, also after the table was emptied.
func TestStoreReopenKeepsDataAndRevision(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "servers.json")
	s, _, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the data file exists before the first write (stat: %v)", err)
	}
	writes := []change{
		{Host: "web-1", Server: &Server{IPAddress: "10.0.0.1", ServiceName: "logs"}},
		{Host: "web-2", Server: &Server{IPAddress: "10.0.0.2", ServiceName: "logs"}},
		{Host: "web-1", MustExist: true},
	}
	for _, c := range writes {
		if out := s.Write(c); out.Err != nil {
			t.Fatal(out.Err)
		}
	}
	s.Close()
	if out := s.Write(writes[0]); out.Err != errClosed {
		t.Fatalf("write after Close: %v, want errClosed", out.Err)
	}

	s2, _, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	snap := s2.Snapshot()
	if snap.revision != 3 || len(snap.servers) != 1 || snap.servers["web-2"].IPAddress != "10.0.0.2" {
		t.Fatalf("reopened: revision %d, servers %v", snap.revision, snap.servers)
	}
	if out := s2.Write(change{Host: "web-2", MustExist: true}); out.Err != nil || out.Revision != 4 {
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
	s, removed, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(removed) != len(stale) {
		t.Errorf("removed %v, want %v", removed, stale)
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
	if s.Snapshot().revision != 5 {
		t.Errorf("revision %d, want 5", s.Snapshot().revision)
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
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "servers.json")
			os.WriteFile(path, []byte(c.content), 0o600)
			_, _, err := OpenStore(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("OpenStore = %v, want an error naming %s and %q", err, path, c.want)
			}
		})
	}
}

// When the file cannot be written the write fails and nothing changes.
func TestStoreFailedWriteChangesNothing(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "not-a-dir")
	reg := startRegistrar(t, regOptions{data: filepath.Join(blocker, "servers.json")})
	// The data folder's place is taken by a file after the start, so the write's
	// mkdir fails (a permission change would not stop root).
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := call(t, "POST", reg.URL+"/api/servers/register", regBody("web-1", "10.1.2.3", "logs"))
	if r.Code != http.StatusInternalServerError || !strings.Contains(r.result(t).Error, "nothing was changed") {
		t.Fatalf("status %d: %s", r.Code, r.Body)
	}
	if s := reg.Store.Snapshot(); s.revision != 0 || len(s.servers) != 0 {
		t.Fatalf("a failed write changed the table: revision %d, %v", s.revision, s.servers)
	}
}

// 200 registrations of different names sent at once all survive, in memory and in
// the file (checked by opening it again).
func TestConcurrentRegistrationsSurvive(t *testing.T) {
	const n = 200
	reg := startRegistrar(t, regOptions{})
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(reg.URL+"/api/servers/register", "application/json",
				strings.NewReader(regBody(fmt.Sprintf("web-%03d", i), fmt.Sprintf("10.0.%d.%d:8080", i/250, i%250+1), "logs")))
			if err != nil {
				errs <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- resp.Status
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if s := reg.Store.Snapshot(); s.revision != n || len(s.servers) != n {
		t.Fatalf("in memory: revision %d, %d servers, want %d", s.revision, len(s.servers), n)
	}
	rev, servers, err := loadDataFile(reg.Data)
	if err != nil || rev != n || len(servers) != n {
		t.Fatalf("on disk: revision %d, %d servers, %v", rev, len(servers), err)
	}
	var commits dtoCounter
	t.Logf("%d registrations in %v durable file replacements", n, commits.read(t, reg))
}
