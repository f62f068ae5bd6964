package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testkit/proc"
	"switchyard/internal/testkit/wait"
)

// A backup restored comes back at an older state than the proxy holds. It is served
// as a new history, so the proxy takes it whole instead of holding its later table
// and then applying deltas to the wrong one: names missing from the backup stop
// routing, names in it route again, and names registered after the restore route.
// Restored onto a fresh volume (the data files copied, no lock file), the registrar
// forks a new lineage at start; restored with its lock record written back in place
// (as a copy of the whole volume would), it starts in the old lineage and forks when
// the proxy polls ahead of it. An import through the API does the same online.
func TestRestoredBackupReachesTheProxy(t *testing.T) {
	t.Run("fresh volume", func(t *testing.T) { testRestore(t, false) })
	t.Run("lock record restored", func(t *testing.T) { testRestore(t, true) })
}

func testRestore(t *testing.T, withLock bool) {
	dir := t.TempDir()
	data := filepath.Join(dir, "servers.json")
	reg := &process{proc.StartRegistrar(t, "-data", data, "-allow-cidr", "127.0.0.0/8")}
	alpha, beta, gamma := upstream(t, "alpha"), upstream(t, "beta"), upstream(t, "gamma")
	register(t, reg.url(), "web-a", alpha)
	register(t, reg.url(), "web-b", beta)
	reg.Stop()
	backup := t.TempDir()
	copyFiles(t, dir, backup, func(name string) bool { return !strings.HasSuffix(name, ".lock") })
	lockRecord, err := os.ReadFile(data + ".lock")
	if err != nil {
		t.Fatal(err)
	}

	reg.Restart()
	px := startDevproxy(t, reg.url())
	routes := func(want map[string]string) func() string {
		return func() string {
			for name, up := range want {
				g := get(t, px.url()+"/sys/x", "X-Server-Name", name)
				if up == "" && g.status != 404 || up != "" && !strings.HasPrefix(g.body, up) {
					return fmt.Sprintf("%s → %d %q, want %q", name, g.status, g.body, up)
				}
			}
			return ""
		}
	}
	register(t, reg.url(), "web-c", gamma)
	deleteServer(t, reg.url(), "web-b")
	register(t, reg.url(), "web-a", gamma)
	wait.Eventually(t, propagation, routes(map[string]string{"web-a": "gamma", "web-b": "", "web-c": "gamma"}))

	// The restore: a fresh volume holding only the backup's files.
	reg.Stop()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !withLock || !strings.HasSuffix(e.Name(), ".lock") {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	copyFiles(t, backup, dir, func(string) bool { return true })
	if withLock {
		// Written into the same file, as a block-level copy keeps it.
		f, err := os.OpenFile(data+".lock", os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt(lockRecord, 0)
		f.Close()
	}
	reg.Restart()
	// The sync is in backoff after the outage; its first poll after it takes the table.
	wait.Eventually(t, 35*time.Second, routes(map[string]string{"web-a": "alpha", "web-b": "beta", "web-c": ""}))
	register(t, reg.url(), "web-d", beta)
	wait.Eventually(t, propagation, routes(map[string]string{"web-d": "beta", "web-a": "alpha"}))

	if withLock {
		if out := reg.Output(); !strings.Contains(out, "holds revision 5 of this lineage, above the 2 this registrar reached") {
			t.Errorf("the registrar did not log the proxy ahead of it:\n%s", out)
		}
		return
	}
	// Online: an export and an import through the API.
	r, err := http.Get(reg.url() + "/api/export")
	if err != nil {
		t.Fatal(err)
	}
	exported, _ := io.ReadAll(r.Body)
	r.Body.Close()
	register(t, reg.url(), "web-e", gamma)
	wait.Eventually(t, propagation, routes(map[string]string{"web-e": "gamma"}))
	r, err = http.Post(reg.url()+"/api/import", "application/json", strings.NewReader(string(exported)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("import: %d %s", r.StatusCode, body)
	}
	wait.Eventually(t, propagation, routes(map[string]string{"web-e": "", "web-d": "beta", "web-a": "alpha", "web-b": "beta"}))
}

// copyFiles copies the regular files of from that keep accepts into to.
func copyFiles(t *testing.T, from, to string, keep func(name string) bool) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !keep(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
