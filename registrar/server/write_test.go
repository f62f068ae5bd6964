package server

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"switchyard/registrar/store"
	"sync"
	"testing"
)

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
	if r.Code != http.StatusInternalServerError || !strings.Contains(r.Result(t).Error, "nothing was changed") {
		t.Fatalf("status %d: %s", r.Code, r.Body)
	}
	if s := reg.Store.Current(); s.Revision() != 0 || s.Len() != 0 {
		t.Fatalf("a failed write changed the table: revision %d, %d servers", s.Revision(), s.Len())
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
	if s := reg.Store.Current(); s.Revision() != n || s.Len() != n {
		t.Fatalf("in memory: revision %d, %d servers, want %d", s.Revision(), s.Len(), n)
	}
	rev, servers, err := store.ReadData(reg.Data)
	if err != nil || rev != n || len(servers) != n {
		t.Fatalf("on disk: revision %d, %d servers, %v", rev, len(servers), err)
	}
	var commits dtoCounter
	t.Logf("%d registrations in %v durable file replacements", n, commits.read(t, reg))
}
