package main

// Crash safety of the built registrar: a write acknowledged with 200 and a revision
// survives a SIGKILL at any moment, the data (data file and write-ahead log) always
// loads, temporary files an interrupted compaction leaves are removed at the next
// start, and the revision never goes back (the registrar's promise: a write is
// acknowledged only after it is durable). The log is compacted every ~150 writes (-compact-bytes), so
// kills land before, during and after compactions.

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/internal/testkit/proc"
	"switchyard/registrar/store"
)

const (
	crashRounds      = 5
	crashWrites      = 1000 // planned per round; the kill cuts the round short
	crashConcurrency = 16
	// crashCompactBytes makes the log compact every ~150 writes.
	crashCompactBytes = 30000
)

// ack is one acknowledged registration.
type ack struct {
	addr     string
	revision uint64
}

func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("random seed %d (kill points)", seed)

	dir := t.TempDir()
	data := filepath.Join(dir, "servers.json")
	acked := map[string]ack{} // every acknowledged write of every round so far
	var highest uint64        // the highest revision ever acknowledged or seen on disk
	tempsSeen := 0
	args := []string{"-data", data, "-compact-bytes", strconv.Itoa(crashCompactBytes)}
	compactions := 0
	p := startBinary(t, nil, args...)
	for round := 1; round <= crashRounds; round++ {
		killAt := 1 + rng.IntN(crashWrites-1) // acknowledgements before the kill
		got := registerUntilKilled(t, p, round, killAt)
		compactions += strings.Count(p.Output(), "compacted the log")
		if len(got) < killAt {
			t.Fatalf("round %d: only %d acknowledgements before the kill, want at least %d:\n%s", round, len(got), killAt, p.Output())
		}
		for name, a := range got {
			acked[name] = a
			highest = max(highest, a.revision)
		}

		// What the crash left, before any restart could tidy it.
		temps := tempFiles(t, data)
		tempsSeen += len(temps)
		rev := readDataFile(t, data, acked)
		if rev < highest {
			t.Fatalf("round %d: the data file is at revision %d after the kill, but %d was acknowledged", round, rev, highest)
		}
		highest = rev
		t.Logf("round %d: killed after %d acknowledgements (planned at %d); file at revision %d; %d temporary file(s) left", round, len(got), killAt, rev, len(temps))

		p = startBinary(t, nil, args...)
		checkRecovered(t, p, data, acked, highest)
		for _, tmp := range temps {
			if !strings.Contains(p.Output(), filepath.Base(tmp)) {
				t.Errorf("round %d: the restart did not report removing %s:\n%s", round, tmp, p.Output())
			}
		}
	}
	stop(t, p)
	compactions += strings.Count(p.Output(), "compacted the log")
	if compactions == 0 {
		t.Fatalf("no compaction ran in %d rounds; the test did not cover kills after compaction", crashRounds)
	}
	t.Logf("%d acknowledged writes survived %d kills and %d compactions; %d temporary file(s) were left by kills and cleaned at restart", len(acked), crashRounds, compactions, tempsSeen)
}

// registerUntilKilled runs crashWrites registrations of fresh names (unique per
// round, so a later unacknowledged write can never stand in for an acknowledged one)
// with crashConcurrency clients, SIGKILLs the registrar once killAt of them are
// acknowledged, and returns every acknowledged write.
func registerUntilKilled(t *testing.T, p *proc.Proc, round, killAt int) map[string]ack {
	t.Helper()
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: crashConcurrency},
	}
	defer client.CloseIdleConnections()
	next := make(chan int, crashWrites)
	for i := range crashWrites {
		next <- i
	}
	close(next)
	var (
		mu     sync.Mutex
		acked  = map[string]ack{}
		revs   = map[uint64]string{}
		count  atomic.Int64
		killed sync.Once
		wg     sync.WaitGroup
	)
	var killErr error
	kill := func() { killed.Do(func() { killErr = p.Kill() }) }
	for range crashConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				name := fmt.Sprintf("crash-%d-%04d", round, i)
				addr := fmt.Sprintf("10.%d.%d.%d:%d", round, i/250, i%250+1, 1000+i)
				rev, ok := registerOnce(client, p.URL(), name, addr)
				if !ok {
					return // the registrar is gone: the rest of this client's writes are not sent
				}
				mu.Lock()
				acked[name] = ack{addr, rev}
				if other, dup := revs[rev]; dup {
					t.Errorf("%s and %s were both acknowledged at revision %d", other, name, rev)
				}
				revs[rev] = name
				mu.Unlock()
				if count.Add(1) == int64(killAt) {
					kill()
				}
			}
		}()
	}
	wg.Wait()
	kill() // in case every write finished first
	if killErr != nil {
		t.Fatalf("the registrar did not go: %v", killErr)
	}
	return acked
}

// registerOnce posts one registration; ok is true only for a 200 carrying a revision.
func registerOnce(c *http.Client, base, name, target string) (uint64, bool) {
	resp, err := c.Post(base+"/api/servers/register", "application/json", strings.NewReader(regBody(name, target, "crash")))
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, false
	}
	var env struct {
		Result struct {
			Success  bool
			Revision *uint64
		}
	}
	if json.Unmarshal(body, &env) != nil || !env.Result.Success || env.Result.Revision == nil {
		return 0, false
	}
	return *env.Result.Revision, true
}

// tempFiles lists the data file's temporary files.
func tempFiles(t *testing.T, data string) []string {
	t.Helper()
	m, err := store.StaleTemps(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readDataFile reads the data strictly (store.ReadData refuses anything that is not
// whole, valid registrar data), requires every acknowledged write in it with its
// acknowledged address, and returns its revision.
func readDataFile(t *testing.T, data string, acked map[string]ack) uint64 {
	t.Helper()
	rev, stored, err := store.ReadData(data)
	if err != nil {
		t.Fatalf("the data does not load after the kill: %v", err)
	}
	for name, a := range acked {
		if stored[name].Target != a.addr {
			t.Fatalf("acknowledged %s → %s (revision %d) is not in the data (it holds %q)", name, a.addr, a.revision, stored[name].Target)
		}
	}
	return rev
}

// checkRecovered requires a restarted registrar to have removed every temporary file
// and to serve every acknowledged write at a revision no lower than highest.
func checkRecovered(t *testing.T, p *proc.Proc, data string, acked map[string]ack, highest uint64) {
	t.Helper()
	if left := tempFiles(t, data); len(left) > 0 {
		t.Fatalf("temporary files survived the restart: %v", left)
	}
	r := call(t, "GET", p.URL()+"/api/servers", "")
	if r.Code != http.StatusOK {
		t.Fatalf("list after restart: %d %s", r.Code, r.Body)
	}
	res := r.Result(t)
	if res.Revision == nil || *res.Revision < highest {
		t.Fatalf("the revision went back to %v after the restart; %d had been acknowledged or stored", res.Revision, highest)
	}
	if res.Servers == nil {
		t.Fatalf("the list after the restart has no \"servers\": %s", r.Body)
	}
	served := map[string]string{}
	for _, s := range *res.Servers {
		served[s.Name] = s.Target
	}
	for name, a := range acked {
		if served[name] != a.addr {
			t.Fatalf("after restart, acknowledged %s → %s (revision %d) is served as %q", name, a.addr, a.revision, served[name])
		}
	}
}
