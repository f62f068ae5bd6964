package e2e

// Registrar replicas on a real 3-member etcd cluster (internal/testkit/etcdtest): the built
// registrar binary, over real HTTP, with etcd members killed, stopped and compacted.
// Each test is bounded: its loops have counts and deadlines.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/internal/testkit/apitest"
	"switchyard/internal/testkit/etcdtest"
	"switchyard/internal/testkit/proc"
	"switchyard/internal/testkit/wait"
)

const etcdPrefix = "/switchyard-e2e/servers/"

// startEtcdRegistrar runs the registrar binary as one replica on c.
func startEtcdRegistrar(t testing.TB, c *etcdtest.Cluster, extra ...string) *process {
	t.Helper()
	args := append([]string{"-allow-cidr", "127.0.0.0/8",
		"-etcd-endpoints", c.EndpointList(), "-etcd-prefix", etcdPrefix, "-etcd-dial-timeout", "2s"}, extra...)
	return &process{proc.StartRegistrar(t, args...)}
}

var client = &http.Client{Timeout: 20 * time.Second}

// tryRegister is register for goroutines: it reports instead of failing the test.
func tryRegister(base, name, target string) (int, string, error) {
	body := apitest.RegBody(name, target, "e2e")
	resp, err := client.Post(base+"/api/servers/register", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// routesAnswer is a GET /v1/routes answer (version 1).
type routesAnswer struct {
	status   int
	Revision uint64            `json:"revision"`
	Routes   map[string]string `json:"routes"`
}

func pollRoutes(base string, after uint64, wait int) (routesAnswer, error) {
	url := base + "/v1/routes"
	if after > 0 {
		url += fmt.Sprintf("?after=%d&wait=%d", after, wait)
	}
	resp, err := client.Get(url)
	if err != nil {
		return routesAnswer{}, err
	}
	defer resp.Body.Close()
	a := routesAnswer{status: resp.StatusCode}
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			return a, err
		}
	}
	return a, nil
}

// v2Client syncs a table through GET /v1/routes?v=2 as the filter does: deltas
// applied on top of the table it holds, full tables assembled from their pages.
type v2Client struct {
	mu      sync.Mutex // step (one goroutine) against same (another)
	base    string
	table   map[string]string
	rev     uint64
	lineage string
	kinds   []string // kind of every answer applied, in order
	revs    []uint64 // revision of every answer applied, in order
}

type v2Answer struct {
	Kind     string            `json:"kind"`
	Lineage  string            `json:"lineage"`
	From     uint64            `json:"from"`
	Revision uint64            `json:"revision"`
	Upserts  map[string]string `json:"upserts"`
	Removals []string          `json:"removals"`
	Routes   map[string]string `json:"routes"`
	Next     string            `json:"next"`
}

func getV2(url string) (int, v2Answer, error) {
	var a v2Answer
	resp, err := client.Get(url)
	if err != nil {
		return 0, a, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			return resp.StatusCode, a, err
		}
	}
	return resp.StatusCode, a, nil
}

// step asks once (waiting up to wait seconds) and applies the answer; it reports an
// answer that breaks the protocol: a delta from another revision, a revision that
// does not increase within one lineage.
func (c *v2Client) step(wait int) error {
	c.mu.Lock()
	rev, lineage := c.rev, c.lineage
	c.mu.Unlock()
	code, a, err := getV2(fmt.Sprintf("%s/v1/routes?v=2&after=%d&lineage=%s&wait=%d", c.base, rev, lineage, wait))
	if err != nil || code == 304 {
		return err
	}
	if code != 200 {
		return fmt.Errorf("v2 poll answered %d", code)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a.Lineage == c.lineage && a.Revision <= c.rev {
		return fmt.Errorf("%s answer at revision %d after revision %d of the same lineage", a.Kind, a.Revision, c.rev)
	}
	switch a.Kind {
	case "delta":
		if a.From != c.rev || a.Lineage != c.lineage {
			return fmt.Errorf("delta from %d (%s) given to a client at %d (%s)", a.From, a.Lineage, c.rev, c.lineage)
		}
		for k, v := range a.Upserts {
			c.table[k] = v
		}
		for _, k := range a.Removals {
			delete(c.table, k)
		}
	case "full":
		table := a.Routes
		for next := a.Next; next != ""; {
			code, p, err := getV2(fmt.Sprintf("%s/v1/routes?v=2&snapshot=%d&start=%s", c.base, a.Revision, next))
			if err != nil || code != 200 || p.Revision != a.Revision {
				return fmt.Errorf("page %s of revision %d: %d revision %d %v", next, a.Revision, code, p.Revision, err)
			}
			for k, v := range p.Routes {
				table[k] = v
			}
			next = p.Next
		}
		c.table = table
	default:
		return fmt.Errorf("answer of kind %q", a.Kind)
	}
	c.rev, c.lineage = a.Revision, a.Lineage
	c.kinds = append(c.kinds, a.Kind)
	c.revs = append(c.revs, a.Revision)
	return nil
}

func (c *v2Client) same(r routesAnswer) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return sameRoutes(routesAnswer{Revision: c.rev, Routes: c.table}, r)
}

func mustRoutes(t testing.TB, base string) routesAnswer {
	t.Helper()
	a, err := pollRoutes(base, 0, 0)
	if err != nil || a.status != 200 {
		t.Fatalf("GET %s/v1/routes: %d %v", base, a.status, err)
	}
	return a
}

func sameRoutes(a, b routesAnswer) string {
	if a.Revision != b.Revision || len(a.Routes) != len(b.Routes) {
		return fmt.Sprintf("revision %d with %d routes vs revision %d with %d routes", a.Revision, len(a.Routes), b.Revision, len(b.Routes))
	}
	for k, v := range a.Routes {
		if b.Routes[k] != v {
			return fmt.Sprintf("%s: %q vs %q", k, v, b.Routes[k])
		}
	}
	return ""
}

// Two replicas: a write through either is seen through both at the same revision,
// and a dev proxy syncing through one routes a server registered through the other.
func TestEtcdReplicasServeOneTable(t *testing.T) {
	c := etcdtest.Start(t, 3)
	a, b := startEtcdRegistrar(t, c), startEtcdRegistrar(t, c)
	up1, up2 := upstream(t, "alpha"), upstream(t, "beta")
	register(t, a.url(), "web-1", up1)
	register(t, b.url(), "web-2", up2)
	wait.Eventually(t, 10*time.Second, func() string {
		ra, rb := mustRoutes(t, a.url()), mustRoutes(t, b.url())
		if len(ra.Routes) != 2 {
			return fmt.Sprintf("replica a serves %v", ra.Routes)
		}
		return sameRoutes(ra, rb)
	})
	for _, base := range []string{a.url(), b.url()} {
		for name, want := range map[string]string{"web-1": up1, "web-2": up2} {
			got := get(t, base+"/api/servers/"+name)
			if got.status != 200 || !strings.Contains(got.body, want) {
				t.Fatalf("GET %s/api/servers/%s: %d %s", base, name, got.status, got.body)
			}
		}
	}
	// One dev proxy syncing through each replica; each routes what was registered
	// through the other.
	pxA, pxB := startDevproxy(t, a.url()), startDevproxy(t, b.url())
	routes := func(px *process, name, want string) func() string {
		return func() string {
			if g := get(t, px.url()+"/sys/x", "X-Server-Name", name); !strings.HasPrefix(g.body, want) {
				return fmt.Sprintf("%s via the proxy at %s: %d %q, want %s", name, px.url(), g.status, g.body, want)
			}
			return ""
		}
	}
	wait.Eventually(t, 20*time.Second, routes(pxB, "web-1", "alpha"))
	wait.Eventually(t, 20*time.Second, routes(pxA, "web-2", "beta"))
	register(t, a.url(), "web-1", up2)
	register(t, b.url(), "web-2", up1)
	wait.Eventually(t, 20*time.Second, routes(pxB, "web-1", "beta"))
	wait.Eventually(t, 20*time.Second, routes(pxA, "web-2", "alpha"))
}

// writeLoad sends count registrations from clients goroutines, spread over the
// replicas (a client whose replica fails moves on to the next), and returns the
// names acknowledged (200) with the address each was given last. A write is retried
// on the next replica until acknowledged or until the deadline.
func writeLoad(t *testing.T, replicas func() []string, clients, count int, deadline time.Time, progress *atomic.Int64) map[string]string {
	t.Helper()
	var mu sync.Mutex
	acked := map[string]string{}
	var wg sync.WaitGroup
	per := count / clients
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			next := c
			for i := 0; i < per; i++ {
				name := fmt.Sprintf("load-%d-%d", c, i)
				addr := fmt.Sprintf("127.0.%d.%d:80", 1+c, 1+i%250)
				for time.Now().Before(deadline) {
					rs := replicas()
					base := rs[next%len(rs)]
					code, _, err := tryRegister(base, name, addr)
					if err == nil && code == 200 {
						mu.Lock()
						acked[name] = addr
						mu.Unlock()
						progress.Add(1)
						break
					}
					next++
					time.Sleep(20 * time.Millisecond)
				}
			}
		}(c)
	}
	wg.Wait()
	return acked
}

func checkAcked(t *testing.T, base string, acked map[string]string) {
	t.Helper()
	r := mustRoutes(t, base)
	missing := 0
	for name, addr := range acked {
		if r.Routes[name] != addr {
			missing++
			if missing < 5 {
				t.Errorf("acknowledged %s → %s, but %s serves %q", name, addr, base, r.Routes[name])
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged writes missing at %s", missing, len(acked), base)
	}
}

// kill -9 of one replica during 1,000 writes from several clients: every
// acknowledged write is in the table the other replica serves, and in the one the
// killed replica serves after its restart.
func TestEtcdReplicaKilledDuringWrites(t *testing.T) {
	c := etcdtest.Start(t, 3)
	a, b := startEtcdRegistrar(t, c), startEtcdRegistrar(t, c)
	var killed atomic.Bool
	replicas := func() []string {
		if killed.Load() {
			return []string{b.url()}
		}
		return []string{a.url(), b.url()}
	}
	var progress atomic.Int64
	go func() {
		for progress.Load() < 300 {
			time.Sleep(5 * time.Millisecond)
		}
		a.Kill() // SIGKILL: writes in flight through a are cut
		killed.Store(true)
	}()
	acked := writeLoad(t, replicas, 8, 1000, time.Now().Add(90*time.Second), &progress)
	if !killed.Load() {
		t.Fatal("the replica was never killed: fewer than 300 writes acknowledged")
	}
	if len(acked) != 1000 {
		t.Fatalf("%d of 1000 writes acknowledged within the deadline", len(acked))
	}
	wait.Eventually(t, 10*time.Second, func() string {
		if n := len(mustRoutes(t, b.url()).Routes); n != 1000 {
			return fmt.Sprintf("replica b serves %d routes", n)
		}
		return ""
	})
	checkAcked(t, b.url(), acked)
	a.Restart()
	checkAcked(t, a.url(), acked)
	if msg := sameRoutes(mustRoutes(t, a.url()), mustRoutes(t, b.url())); msg != "" {
		t.Fatalf("after the restart the replicas differ: %s", msg)
	}
}

// The etcd leader stopped during writes: writes resume after the election, nothing
// acknowledged is lost, and a client long-polling the other replica sees revisions
// that only increase, never repeated and never back.
func TestEtcdLeaderStoppedDuringWrites(t *testing.T) {
	c := etcdtest.Start(t, 3)
	a, b := startEtcdRegistrar(t, c), startEtcdRegistrar(t, c)

	// The syncing client: long-polls b with sync protocol version 2 (deltas), as a
	// proxy does; step fails on a repeated or reordered revision.
	stop := make(chan struct{})
	sync2 := &v2Client{base: b.url()}
	var pollErr error
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if pollErr = sync2.step(2); pollErr != nil {
				return
			}
		}
	}()

	var progress atomic.Int64
	var leaderStopped atomic.Int64 // writes acknowledged when the leader was stopped
	var leader *etcdtest.Member
	done := make(chan struct{})
	go func() {
		defer close(done)
		for progress.Load() < 100 {
			time.Sleep(5 * time.Millisecond)
		}
		leader = c.Leader()
		leaderStopped.Store(progress.Load())
		leader.Stop()
	}()
	acked := writeLoad(t, func() []string { return []string{a.url(), b.url()} }, 4, 400, time.Now().Add(90*time.Second), &progress)
	<-done
	if len(acked) != 400 {
		t.Fatalf("%d of 400 writes acknowledged within the deadline; writes did not resume after the election", len(acked))
	}
	if after := int64(len(acked)) - leaderStopped.Load(); after < 100 {
		t.Fatalf("only %d writes acknowledged after the leader %s stopped", after, leader.Name)
	}
	wait.Eventually(t, 10*time.Second, func() string {
		if n := len(mustRoutes(t, b.url()).Routes); n != 400 {
			return fmt.Sprintf("replica b serves %d routes", n)
		}
		return ""
	})
	wait.Eventually(t, 10*time.Second, func() string {
		if pollErr != nil {
			return ""
		}
		return sync2.same(mustRoutes(t, a.url()))
	})
	close(stop)
	<-polled
	if pollErr != nil {
		t.Fatalf("the syncing client: %v (answers so far: %v at %v)", pollErr, sync2.kinds, sync2.revs)
	}
	checkAcked(t, a.url(), acked)
	checkAcked(t, b.url(), acked)
	deltas := 0
	for _, k := range sync2.kinds {
		if k == "delta" {
			deltas++
		}
	}
	if len(sync2.revs) < 2 || deltas == 0 {
		t.Fatalf("the syncing client applied %v: want several answers, deltas among them", sync2.kinds)
	}
	if msg := sync2.same(mustRoutes(t, a.url())); msg != "" {
		t.Fatalf("the table the syncing client built from deltas differs from the replicas': %s", msg)
	}
}

// etcd unreachable: writes answer 503 naming etcd; reads, long-polls and routing go
// on from the last table; when etcd returns, writes go through again and waiting
// long-polls wake.
func TestEtcdUnreachable(t *testing.T) {
	c := etcdtest.Start(t, 3)
	a := startEtcdRegistrar(t, c)
	up := upstream(t, "alpha")
	register(t, a.url(), "web-1", up)
	px := startDevproxy(t, a.url())
	wait.Eventually(t, 20*time.Second, func() string {
		if g := get(t, px.url()+"/sys/x", "X-Server-Name", "web-1"); !strings.HasPrefix(g.body, "alpha") {
			return fmt.Sprintf("web-1: %d %q", g.status, g.body)
		}
		return ""
	})
	before := mustRoutes(t, a.url())

	c.Stop()
	code, body, err := tryRegister(a.url(), "web-2", up)
	if err != nil || code != 503 || !strings.Contains(body, "etcd") {
		t.Fatalf("write with etcd down: %d %s %v; want 503 naming etcd", code, body, err)
	}
	if got := mustRoutes(t, a.url()); sameRoutes(got, before) != "" {
		t.Fatalf("table with etcd down: %s", sameRoutes(got, before))
	}
	if g := get(t, a.url()+"/api/servers/web-1"); g.status != 200 {
		t.Fatalf("GET /api/servers/web-1 with etcd down: %d %s", g.status, g.body)
	}
	if r, err := pollRoutes(a.url(), before.Revision, 1); err != nil || r.status != 304 {
		t.Fatalf("long-poll with etcd down: %d %v, want 304 after the wait", r.status, err)
	}
	if g := get(t, px.url()+"/sys/x", "X-Server-Name", "web-1"); !strings.HasPrefix(g.body, "alpha") {
		t.Fatalf("routing with etcd down: %d %q", g.status, g.body)
	}

	// A long-poll waiting while etcd comes back wakes with the first write after.
	woke := make(chan routesAnswer, 1)
	go func() {
		r, _ := pollRoutes(a.url(), before.Revision, 60)
		woke <- r
	}()
	c.Restart()
	wait.Eventually(t, 30*time.Second, func() string {
		code, body, err := tryRegister(a.url(), "web-2", up)
		if err != nil || code != 200 {
			return fmt.Sprintf("write after etcd returned: %d %s %v", code, body, err)
		}
		return ""
	})
	select {
	case r := <-woke:
		if r.status != 200 || r.Routes["web-2"] != up {
			t.Fatalf("the waiting long-poll got %d %v", r.status, r.Routes)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the waiting long-poll did not wake after etcd returned and a write went through")
	}
}

// A replica whose watch fell behind an etcd compaction (its only member was down)
// reads the table afresh; a client long-polling it from the old revision gets the
// current table and converges with the other replica.
func TestEtcdCompactionPastLaggingReplica(t *testing.T) {
	c := etcdtest.Start(t, 3)
	lag := c.Members[0]
	a := startEtcdRegistrar(t, c)
	b := &process{proc.StartRegistrar(t, "-allow-cidr", "127.0.0.0/8",
		"-etcd-endpoints", lag.ClientURL, "-etcd-prefix", etcdPrefix, "-etcd-dial-timeout", "2s")}
	up := upstream(t, "alpha")
	register(t, a.url(), "web-1", up)
	wait.Eventually(t, 10*time.Second, func() string {
		return sameRoutes(mustRoutes(t, b.url()), mustRoutes(t, a.url()))
	})
	// The lagging client: a proxy synced through b, holding the table at this revision.
	lagging := &v2Client{base: b.url()}
	if err := lagging.step(0); err != nil || len(lagging.revs) != 1 {
		t.Fatalf("first sync through b: %v (%v)", err, lagging.kinds)
	}

	lag.Kill()
	c.WaitHealthy()
	register(t, a.url(), "web-2", up)
	deleteServer(t, a.url(), "web-1")
	register(t, a.url(), "web-3", up)
	c.Compact(c.Revision())
	lag.Start()
	c.WaitHealthy()

	// b reads the table afresh; the client, behind b's new history, is given the
	// full table and converges on what a serves.
	wait.Eventually(t, 30*time.Second, func() string {
		if err := lagging.step(1); err != nil {
			t.Fatalf("lagging client: %v", err)
		}
		return lagging.same(mustRoutes(t, a.url()))
	})
	if kinds := lagging.kinds; kinds[len(kinds)-1] != "full" {
		t.Fatalf("the lagging client converged through %v, want a full table after the compaction", kinds)
	}
	final := mustRoutes(t, b.url())
	if _, ok := final.Routes["web-1"]; ok || final.Routes["web-3"] != up {
		t.Fatalf("after the full read, b serves %v", final.Routes)
	}
	if !strings.Contains(b.Output(), "compacted") {
		t.Fatalf("replica b converged without reading the table afresh after the compaction; output:\n%s", b.Output())
	}
}

// -import of a seed file into an empty etcd: the servers are in etcd and every
// replica started afterwards serves them.
func TestEtcdImportIntoEmptyEtcd(t *testing.T) {
	c := etcdtest.Start(t, 3)
	seed := filepath.Join(t.TempDir(), "server_mapping.json")
	if err := os.WriteFile(seed, []byte(`{"seed-1": "127.0.0.1:8001", "seed-2": "127.0.0.1:8002"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-allow-cidr", "127.0.0.0/8", "-etcd-endpoints", c.EndpointList(), "-etcd-prefix", etcdPrefix, "-import", seed}
	code, out := proc.Run(t, "registrar", proc.Config{Args: args, Clear: []string{"REGISTRAR_"}})
	if code != 0 {
		t.Fatalf("registrar -import: exit %d\n%s", code, out)
	}
	a := startEtcdRegistrar(t, c)
	r := mustRoutes(t, a.url())
	if len(r.Routes) != 2 || r.Routes["seed-1"] != "127.0.0.1:8001" || r.Routes["seed-2"] != "127.0.0.1:8002" {
		t.Fatalf("after the import, the replica serves %v", r.Routes)
	}
	// Importing the same seed again changes nothing: same revision.
	code, out = proc.Run(t, "registrar", proc.Config{Args: args, Clear: []string{"REGISTRAR_"}})
	if code != 0 {
		t.Fatalf("second import: exit %d\n%s", code, out)
	}
	if again := mustRoutes(t, a.url()); again.Revision != r.Revision {
		t.Fatalf("a second import of the same seed moved the revision %d → %d", r.Revision, again.Revision)
	}

	// A seed larger than one etcd transaction (--max-txn-ops, 128 by default) is
	// written in parts, and every entry arrives.
	const many = 300
	big := map[string]string{}
	for i := 0; i < many; i++ {
		big[fmt.Sprintf("bulk-%03d", i)] = fmt.Sprintf("127.0.0.1:%d", 10000+i)
	}
	raw, _ := json.Marshal(big)
	if err := os.WriteFile(seed, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out = proc.Run(t, "registrar", proc.Config{Args: args, Clear: []string{"REGISTRAR_"}})
	if code != 0 {
		t.Fatalf("import of %d entries: exit %d\n%s", many, code, out)
	}
	wait.Eventually(t, 10*time.Second, func() string {
		got := mustRoutes(t, a.url()).Routes
		for name, target := range big {
			if got[name] != target {
				return fmt.Sprintf("after importing %d entries the replica serves %d routes; %s → %q, want %q", many, len(got), name, got[name], target)
			}
		}
		return ""
	})
}
