// Package etcdtest runs a real etcd cluster for a test: n members (3 for a cluster
// that survives the loss of one) on 127.0.0.1 free ports, each in its own folder of
// the test's temporary directory, stopped and removed when the test ends.
//
// # Why Debian's etcd-server, not the embedded server
//
// The members are separate processes of the etcd binary from Debian's etcd-server
// package (3.4 on bookworm), not go.etcd.io/etcd/server/v3/embed in the test process:
//
//   - the failures the registrar must survive are process failures: a member killed
//     with SIGKILL mid-write, the leader stopped and an election held, every member
//     gone and back. A separate process can be killed -9 and restarted on its data
//     folder exactly as in production; an embedded server shares the test's process
//     and can only be closed politely;
//   - the embedded server brings etcd's whole server tree (raft, bbolt, grpc-gateway,
//     otel, ...) into go.mod and into every `go test ./...` build;
//     the registrar itself needs only the client (go.etcd.io/etcd/client/v3, whose v3
//     API the 3.4 server speaks: KV, Txn, Watch with progress notifications, Compact,
//     Maintenance.Status);
//   - it is the etcd an operator on Debian runs.
//
// `make test` installs the package when missing (scripts/test-deps; CI's .ci/run is a
// call of make test). A test that needs etcd and finds no binary fails, saying how to
// install it, so a green run always includes the etcd tests. SWITCHYARD_ETCD_BIN names
// another etcd binary.
package etcdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"switchyard/internal/testkit/proc"
)

// InstallCommand is the one command that installs the etcd server the tests run.
const InstallCommand = "apt-get update && apt-get install -y --no-install-recommends etcd-server"

// How long a cluster may take to become healthy, a member to end after SIGTERM, and
// one call to a member to answer. Generous: on a loaded machine members start and
// elect slowly, and a test only waits this long when something is already wrong.
const (
	HealthyWithin = 30 * time.Second
	StopWithin    = 10 * time.Second
	CallTimeout   = 5 * time.Second
)

// Binary returns the path of the etcd server binary, or fails the test saying how to
// install it.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SWITCHYARD_ETCD_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("SWITCHYARD_ETCD_BIN=%s: %v", p, err)
		}
		return p
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd" // where etcd-server puts it, also when PATH lacks /usr/bin
	}
	t.Fatal("no etcd server binary on PATH or at /usr/bin/etcd; this test runs a real 3-member etcd cluster; run `make test-deps` (or " + InstallCommand + ")")
	return ""
}

// Cluster is a running etcd cluster. Its methods are for the test's own goroutine,
// except Endpoints and the members' Kill.
type Cluster struct {
	t       testing.TB
	bin     string
	Members []*Member
}

// Member is one etcd process of a Cluster. It keeps its name, ports and data folder
// across Stop/Kill and Start, as a restarted machine would.
type Member struct {
	c         *Cluster
	Name      string
	ClientURL string // http://127.0.0.1:PORT
	PeerURL   string // http://127.0.0.1:PORT
	dir       string
	args      []string

	mu  sync.Mutex
	out bytes.Buffer // output of every run, in order
	run *proc.Child
}

// Start runs an n-member cluster and returns once every member answers and the
// cluster has a leader. The cluster is killed and its folders removed when the test
// ends; on failure the end of each member's log is printed.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := Binary(t)
	// A free port found here can be taken by someone else before etcd binds it; that
	// shows as a member that exits at once, and the whole cluster is tried again on
	// new ports.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		c, err := start(t, bin, n)
		if err == nil {
			return c
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	t.Fatalf("etcdtest: starting a %d-member etcd cluster: %v", n, lastErr)
	return nil
}

var errPortTaken = errors.New("a port was taken before etcd could bind it")

func start(t testing.TB, bin string, n int) (*Cluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	base := t.TempDir()
	c := &Cluster{t: t, bin: bin}
	var initial []string
	for i := 0; i < n; i++ {
		m := &Member{
			c:         c,
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
		}
		m.dir = filepath.Join(base, m.Name)
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	// A token of its own per cluster: members of two clusters of one test can never
	// join each other even if a port is reused.
	token := fmt.Sprintf("switchyard-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	for _, m := range c.Members {
		m.args = []string{
			"--name", m.Name,
			"--data-dir", m.dir,
			"--listen-client-urls", m.ClientURL,
			"--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL,
			"--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", token,
			// etcd's defaults (100 ms / 1 s): shorter timeouts hold elections on a
			// loaded machine for no reason, which a test would see as flakiness.
			"--heartbeat-interval", "100",
			"--election-timeout", "1000",
			"--logger", "zap",
			"--log-level", "warn",
		}
	}
	t.Cleanup(c.cleanup)
	for _, m := range c.Members {
		if err := m.start(); err != nil {
			c.cleanup()
			return nil, err
		}
	}
	if err := c.waitHealthy(HealthyWithin); err != nil {
		logs := c.logs()
		c.cleanup()
		if errors.Is(err, errPortTaken) {
			return nil, err
		}
		return nil, fmt.Errorf("%v\n%s", err, logs)
	}
	return c, nil
}

// freePorts finds n distinct free TCP ports on 127.0.0.1, holding them all until
// every one is found so none is handed out twice.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (c *Cluster) cleanup() {
	for _, m := range c.Members {
		m.Kill()
	}
	if c.t.Failed() {
		c.t.Logf("etcd members' output (the end):\n%s", c.logs())
	}
}

func (c *Cluster) logs() string {
	var b strings.Builder
	for _, m := range c.Members {
		fmt.Fprintf(&b, "--- etcd member %s (%s):\n%s\n", m.Name, m.ClientURL, proc.Tail(m.Output(), 4<<10))
	}
	return b.String()
}

// Endpoints are the members' client URLs, as the registrar's -etcd-endpoints takes
// them (joined with commas).
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.ClientURL)
	}
	return eps
}

// EndpointList is Endpoints joined with commas.
func (c *Cluster) EndpointList() string { return strings.Join(c.Endpoints(), ",") }

// Client returns a client of the whole cluster, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := newClient(c.Endpoints())
	if err != nil {
		t.Fatalf("etcdtest: client of %v: %v", c.Endpoints(), err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func newClient(endpoints []string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: CallTimeout,
		Logger:      zap.NewNop(), // the client's retries are noise in a test's log
	})
}

// WaitHealthy waits, at most HealthyWithin, until every running member answers a
// status request and a linearizable read goes through, that is until the cluster has
// a leader that a quorum follows.
func (c *Cluster) WaitHealthy() {
	c.t.Helper()
	if err := c.waitHealthy(HealthyWithin); err != nil {
		c.t.Fatalf("etcdtest: %v", err)
	}
}

func (c *Cluster) waitHealthy(within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for {
		if last = c.healthy(); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd cluster not healthy within %v: %v", within, last)
		}
		for _, m := range c.Members {
			if !m.running() && m.current() != nil && strings.Contains(m.Output(), "address already in use") {
				return fmt.Errorf("%w: member %s", errPortTaken, m.Name)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *Cluster) healthy() error {
	var running []string
	for _, m := range c.Members {
		if m.running() {
			running = append(running, m.ClientURL)
		}
	}
	if len(running) == 0 {
		return errors.New("no member is running")
	}
	for _, ep := range running {
		st, err := status(ep)
		if err != nil {
			return fmt.Errorf("member %s: %v", ep, err)
		}
		if st.Leader == 0 {
			return fmt.Errorf("member %s has no leader", ep)
		}
		if len(st.Errors) > 0 {
			return fmt.Errorf("member %s: %v", ep, st.Errors)
		}
	}
	cli, err := newClient(running)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	if _, err := cli.Get(ctx, "etcdtest-health"); err != nil {
		return fmt.Errorf("linearizable read: %v", err)
	}
	return nil
}

func status(endpoint string) (*clientv3.StatusResponse, error) {
	cli, err := newClient([]string{endpoint})
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	return cli.Status(ctx, endpoint)
}

// Leader returns the member that is leader now, as every running member that answers
// sees it; it waits at most HealthyWithin for an elected one.
func (c *Cluster) Leader() *Member {
	c.t.Helper()
	deadline := time.Now().Add(HealthyWithin)
	var last error
	for time.Now().Before(deadline) {
		var leader uint64
		ids := map[uint64]*Member{}
		last = nil
		for _, m := range c.Members {
			if !m.running() {
				continue
			}
			st, err := status(m.ClientURL)
			if err != nil {
				last = fmt.Errorf("member %s: %v", m.Name, err)
				break
			}
			ids[st.Header.MemberId] = m
			if st.Leader == 0 || (leader != 0 && st.Leader != leader) {
				last = fmt.Errorf("members disagree on the leader (%x, %x)", leader, st.Leader)
				break
			}
			leader = st.Leader
		}
		if last == nil && leader != 0 {
			if m, ok := ids[leader]; ok {
				return m
			}
			last = fmt.Errorf("leader %x is no running member", leader)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("etcdtest: no leader within %v: %v", HealthyWithin, last)
	return nil
}

// Compact compacts the cluster's history up to rev (physically, so that a watch from
// an older revision is refused with ErrCompacted on every member).
func (c *Cluster) Compact(rev int64) {
	c.t.Helper()
	cli := c.Client(c.t)
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		c.t.Fatalf("etcdtest: compacting to revision %d: %v", rev, err)
	}
}

// Revision returns the cluster's current revision (a linearizable read).
func (c *Cluster) Revision() int64 {
	c.t.Helper()
	cli := c.Client(c.t)
	ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
	defer cancel()
	r, err := cli.Get(ctx, "etcdtest-revision")
	if err != nil {
		c.t.Fatalf("etcdtest: reading the revision: %v", err)
	}
	return r.Header.Revision
}

// Stop stops every member (SIGTERM): etcd unreachable, data kept.
func (c *Cluster) Stop() {
	c.t.Helper()
	for _, m := range c.Members {
		m.Stop()
	}
}

// Restart starts every member that is not running and waits until the cluster is
// healthy.
func (c *Cluster) Restart() {
	c.t.Helper()
	for _, m := range c.Members {
		if !m.running() {
			if err := m.start(); err != nil {
				c.t.Fatalf("etcdtest: %v", err)
			}
		}
	}
	c.WaitHealthy()
}

// Backup is a copy of every member's data folder, taken with the cluster stopped,
// as an operator's file-level backup would be.
type Backup struct{ dirs map[string]string }

// Backup stops the cluster, copies every member's data folder and starts it again.
func (c *Cluster) Backup() *Backup {
	c.t.Helper()
	c.Stop()
	b := &Backup{dirs: map[string]string{}}
	base := c.t.TempDir()
	for _, m := range c.Members {
		dst := filepath.Join(base, m.Name)
		if err := copyDir(m.dir, dst); err != nil {
			c.t.Fatalf("etcdtest: backing up member %s: %v", m.Name, err)
		}
		b.dirs[m.Name] = dst
	}
	c.Restart()
	return b
}

// RestoreBackup stops the cluster, puts b's data folders in place of the members' and
// starts it again: etcd comes back at the older revision with the same cluster id,
// as after restoring a backup.
func (c *Cluster) RestoreBackup(b *Backup) {
	c.t.Helper()
	c.Stop()
	for _, m := range c.Members {
		if err := os.RemoveAll(m.dir); err != nil {
			c.t.Fatal(err)
		}
		if err := copyDir(b.dirs[m.Name], m.dir); err != nil {
			c.t.Fatalf("etcdtest: restoring member %s: %v", m.Name, err)
		}
	}
	c.Restart()
}

func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o600)
	})
}

func (m *Member) start() error {
	cmd := exec.Command(m.c.bin, m.args...)
	// The member dies with the test process even when the test is killed before its
	// clean-up runs, so no stray etcd is left holding ports.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	r, err := proc.StartCapture(cmd, &m.mu, &m.out, nil)
	if err != nil {
		return fmt.Errorf("starting etcd member %s (%s): %v", m.Name, m.c.bin, err)
	}
	m.mu.Lock()
	m.run = r
	m.mu.Unlock()
	return nil
}

func (m *Member) current() *proc.Child {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.run
}

func (m *Member) running() bool {
	r := m.current()
	if r == nil {
		return false
	}
	select {
	case <-r.Exited():
		return false
	default:
		return true
	}
}

// Running reports whether the member's process is alive.
func (m *Member) Running() bool { return m.running() }

// Output is everything the member has logged over all its runs.
func (m *Member) Output() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.out.String()
}

// Stop ends the member as an operator would (SIGTERM, then SIGKILL StopWithin later).
func (m *Member) Stop() {
	r := m.current()
	if r == nil {
		return
	}
	r.Cmd.Process.Signal(syscall.SIGTERM) // an error only means it has exited already
	select {
	case <-r.Exited():
	case <-time.After(StopWithin):
		m.Kill()
	}
}

// Kill ends the member with SIGKILL, as a crash would, and waits for it to be gone.
// Safe to call from any goroutine.
func (m *Member) Kill() {
	r := m.current()
	if r == nil {
		return
	}
	r.Cmd.Process.Kill() // an error only means it has exited already
	select {
	case <-r.Exited():
	case <-time.After(StopWithin):
	}
}

// Start starts a stopped or killed member again on its ports and data folder; it
// rejoins the cluster. Use the cluster's WaitHealthy to wait for it.
func (m *Member) Start() {
	m.c.t.Helper()
	if m.running() {
		m.c.t.Fatalf("etcdtest: member %s is already running", m.Name)
	}
	if err := m.start(); err != nil {
		m.c.t.Fatalf("etcdtest: %v", err)
	}
}
