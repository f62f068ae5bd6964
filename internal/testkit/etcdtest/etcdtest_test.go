package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"switchyard/internal/testkit/wait"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// One cluster goes through what the registrar's tests do with it: writes, a killed
// leader and an election, the member back and caught up, compaction, every member
// stopped and started again; at the end every process is gone.
func TestCluster(t *testing.T) {
	c := Start(t, 3)
	if len(c.Endpoints()) != 3 {
		t.Fatalf("endpoints %v, want 3", c.Endpoints())
	}
	cli := c.Client(t)
	put := func(k, v string) int64 {
		t.Helper()
		r, err := cli.Put(ctx(t), k, v)
		if err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		return r.Header.Revision
	}
	first := put("a", "1")
	if got := c.Revision(); got != first {
		t.Fatalf("Revision() = %d after a put at %d", got, first)
	}

	// The leader killed: the others elect a new one and take writes; the old leader
	// comes back as a follower with the writes it missed.
	old := c.Leader()
	old.Kill()
	if old.Running() {
		t.Fatalf("member %s still running after Kill", old.Name)
	}
	c.WaitHealthy()
	now := c.Leader()
	if now == old {
		t.Fatalf("leader is still the killed member %s", old.Name)
	}
	second := put("b", "2")
	if second <= first {
		t.Fatalf("revision %d after the election, not above %d", second, first)
	}
	old.Start()
	c.WaitHealthy()
	one, err := clientv3.New(clientv3.Config{Endpoints: []string{old.ClientURL}, DialTimeout: CallTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	// A serializable read answers from the member's own copy: it has caught up.
	wait.Eventually(t, HealthyWithin, func() string {
		r, err := one.Get(ctx(t), "b", clientv3.WithSerializable())
		if err != nil {
			return err.Error()
		}
		if len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "2" {
			return fmt.Sprintf("restarted member %s has %v for b, want 2", old.Name, r.Kvs)
		}
		return ""
	})

	// Compaction: a watch from before the compacted revision is refused.
	third := put("c", "3")
	c.Compact(third)
	w := cli.Watch(ctx(t), "a", clientv3.WithRev(first))
	resp := <-w
	if resp.CompactRevision != third || !errors.Is(resp.Err(), rpctypes.ErrCompacted) {
		t.Fatalf("watch from compacted revision %d: compact revision %d, err %v; want %d, ErrCompacted", first, resp.CompactRevision, resp.Err(), third)
	}
	if _, err := cli.Get(ctx(t), "a", clientv3.WithRev(first)); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("get at compacted revision %d: %v, want ErrCompacted", first, err)
	}

	// Every member stopped: nothing answers; started again: the data is there.
	c.Stop()
	short, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err = cli.Put(short, "d", "4")
	cancel()
	if err == nil {
		t.Fatal("a put succeeded with every member stopped")
	}
	c.Restart()
	r, err := cli.Get(ctx(t), "c")
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "3" {
		t.Fatalf("after restart, c = %v (%v), want 3", r, err)
	}
	if r.Header.Revision != third {
		t.Fatalf("after restart, revision %d, want %d (nothing written since)", r.Header.Revision, third)
	}
}

// A restored backup brings etcd back at the older revision and data.
func TestBackupRestore(t *testing.T) {
	c := Start(t, 3)
	cli := c.Client(t)
	if _, err := cli.Put(ctx(t), "k", "old"); err != nil {
		t.Fatal(err)
	}
	before := c.Revision()
	b := c.Backup()
	for i := 0; i < 5; i++ {
		if _, err := cli.Put(ctx(t), "k", fmt.Sprint("new", i)); err != nil {
			t.Fatal(err)
		}
	}
	c.RestoreBackup(b)
	r, err := cli.Get(ctx(t), "k")
	if err != nil {
		t.Fatal(err)
	}
	if r.Header.Revision != before || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "old" {
		t.Fatalf("after restore: revision %d, k=%v; want %d, old", r.Header.Revision, r.Kvs, before)
	}
}

// The clean-up a test gets: every member's process gone and its ports free.
func TestCleanupEndsMembers(t *testing.T) {
	var c *Cluster
	t.Run("cluster", func(t *testing.T) {
		c = Start(t, 3)
	})
	for _, m := range c.Members {
		if m.Running() {
			t.Errorf("member %s still running after its test ended", m.Name)
		}
		u, err := url.Parse(m.ClientURL)
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", u.Host)
		if err != nil {
			t.Errorf("member %s's client port %s not free after its test ended: %v", m.Name, u.Host, err)
			continue
		}
		l.Close()
	}
}
