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
	if h := call(t, "GET", reg.URL+"/healthz", ""); h.Code != 200 {
		t.Fatalf("healthz before any write: %d %s", h.Code, h.Body)
	}
	r := call(t, "POST", reg.URL+"/api/servers/register", regBody("web-1", "10.1.2.3", "logs"))
	if r.Code != http.StatusInternalServerError || !strings.Contains(r.Result(t).Error, "nothing was changed") {
		t.Fatalf("status %d: %s", r.Code, r.Body)
	}
	// The path is the operator's business (logs), not the client's.
	if strings.Contains(string(r.Body), blocker) || strings.Contains(string(r.Body), "servers.json") {
		t.Errorf("the answer shows the data path: %s", r.Body)
	}
	h := call(t, "GET", reg.URL+"/healthz", "")
	if h.Code != http.StatusServiceUnavailable || !strings.Contains(string(h.Body), `"status":"failing"`) ||
		!strings.Contains(string(h.Body), "not a directory") || strings.Contains(string(h.Body), blocker) {
		t.Errorf("healthz while writes fail: %d %s, want 503 with the reason and no path", h.Code, h.Body)
	}
	if s := reg.Store.Current(); s.Revision() != 0 || s.Len() != 0 {
		t.Fatalf("a failed write changed the table: revision %d, %d servers", s.Revision(), s.Len())
	}
	// Once the disk is fixed and a write succeeds, health is back.
	os.Remove(blocker)
	register(t, reg.URL, "web-1", "10.1.2.3", "logs")
	if h := call(t, "GET", reg.URL+"/healthz", ""); h.Code != 200 || !strings.Contains(string(h.Body), `"status":"ok"`) {
		t.Errorf("healthz after a write succeeded again: %d %s", h.Code, h.Body)
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

// A write that would take the table past -max-servers is refused with 507 and
// changes nothing.
func TestMaxServersRefusesWrites(t *testing.T) {
	reg := startRegistrarTB(t, regOptions{maxServers: 2})
	register(t, reg.URL, "a", "10.0.0.1", "x")
	register(t, reg.URL, "b", "10.0.0.2", "x")
	r := call(t, "POST", reg.URL+"/api/servers/register", regBody("c", "10.0.0.3", "x"))
	if r.Code != http.StatusInsufficientStorage || !strings.Contains(r.Result(t).Error, "-max-servers") {
		t.Fatalf("third server: %d %s, want 507 naming -max-servers", r.Code, r.Body)
	}
	register(t, reg.URL, "a", "10.0.0.9", "x") // replacing adds nothing
	if rev := reg.Store.Current().Revision(); rev != 3 {
		t.Fatalf("revision %d, want 3", rev)
	}
}

// Loaded entries follow the write rules the store does not know about.
func TestLoadedEntriesFollowWriteRules(t *testing.T) {
	for _, c := range []struct{ name, server, want string }{
		{"reserved name", `{"host": "register", "ipAddress": "10.0.0.1", "serviceName": "x"}`, `"register" is reserved`},
		{"control character in serviceName", `{"host": "a", "ipAddress": "10.0.0.1", "serviceName": "x\u0007y"}`, "control characters"},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "servers.json")
			os.WriteFile(data, []byte(`{"revision": 1, "servers": [`+c.server+`]}`), 0o600)
			_, err := newServer(t, Config{}, data)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), data) {
				t.Fatalf("opening the store for a server = %v, want a refusal naming %s and %q", err, data, c.want)
			}
		})
	}
}
