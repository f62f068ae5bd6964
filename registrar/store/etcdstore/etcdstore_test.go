package etcdstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"switchyard/internal/testkit/etcdtest"
	"switchyard/internal/testkit/logbuf"
	"switchyard/internal/testkit/wait"
	"switchyard/registrar/store"
)

func openStore(t *testing.T, endpoints []string, log *logbuf.Buffer) *Store {
	t.Helper()
	o := Options{Endpoints: endpoints, Prefix: "/t/servers/", DialTimeout: 2 * time.Second}
	if log != nil {
		o.Log = slog.New(slog.NewTextHandler(log, nil))
	}
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func put(t *testing.T, s *Store, name, target string) store.WriteResult {
	t.Helper()
	out := s.Write(store.Change{Name: name, Server: &store.Server{Target: target, Service: "svc"}})
	if out.Err != nil {
		t.Fatalf("write %s: %v", name, out.Err)
	}
	return out
}

func same(a, b *Store) string {
	ta, tb := a.Current(), b.Current()
	if ta.Revision() != tb.Revision() || a.Lineage() != b.Lineage() || ta.Len() != tb.Len() {
		return fmt.Sprintf("tables differ: revision %d/%d, lineage %s/%s, %d/%d servers", ta.Revision(), tb.Revision(), a.Lineage(), b.Lineage(), ta.Len(), tb.Len())
	}
	msg := ""
	ta.Ascend("", func(sv store.Server) bool {
		if o, _ := tb.Get(sv.Name); !store.SameContent(o, sv) || o.Name != sv.Name || !o.UpdatedAt.Equal(sv.UpdatedAt) {
			msg = fmt.Sprintf("server %s: %+v vs %+v", sv.Name, sv, o)
			return false
		}
		return true
	})
	return msg
}

func targetOf(s *Store, name string) string {
	sv, _ := s.Current().Get(name)
	return sv.Target
}

// Two replicas on one etcd: a write through either is in both, at the same revision,
// with the same lineage; a write that changes nothing moves nothing; a removal of a
// missing server is refused.
func TestReplicasAgree(t *testing.T) {
	c := etcdtest.Start(t, 3)
	a := openStore(t, c.Endpoints(), nil)
	b := openStore(t, c.Endpoints(), nil)
	if a.Lineage() == "" || a.Lineage() != b.Lineage() {
		t.Fatalf("lineages %q and %q: want one, not empty", a.Lineage(), b.Lineage())
	}
	o1 := put(t, a, "web-1", "10.0.0.1:80")
	if got := a.Current(); got.Revision() != o1.Revision || targetOf(a, "web-1") != "10.0.0.1:80" {
		t.Fatalf("after the acknowledged write, replica a has revision %d web-1=%q, want %d with web-1", got.Revision(), targetOf(a, "web-1"), o1.Revision)
	}
	o2 := put(t, b, "web-2", "10.0.0.2:80")
	if o2.Revision <= o1.Revision {
		t.Fatalf("revision %d after %d", o2.Revision, o1.Revision)
	}
	wait.Eventually(t, 5*time.Second, func() string { return same(a, b) })

	// Same content again: no change, no new revision, updatedAt kept.
	again := put(t, a, "web-1", "10.0.0.1:80")
	if again.Changed || again.Revision != o2.Revision {
		t.Fatalf("unchanged write: changed %v revision %d, want false %d", again.Changed, again.Revision, o2.Revision)
	}
	if c.Revision() != int64(o2.Revision) {
		t.Fatalf("etcd's revision moved to %d on a write that changed nothing (want %d)", c.Revision(), o2.Revision)
	}

	del := b.Write(store.Change{Name: "web-1", MustExist: true})
	if del.Err != nil || !del.Changed {
		t.Fatalf("delete: %+v", del)
	}
	wait.Eventually(t, 5*time.Second, func() string { return same(a, b) })
	if targetOf(a, "web-1") != "" {
		t.Fatal("web-1 still served after its deletion")
	}
	if gone := a.Write(store.Change{Name: "web-1", MustExist: true}); !errors.Is(gone.Err, store.ErrNotFound) {
		t.Fatalf("deleting a missing server: %v, want store.ErrNotFound", gone.Err)
	}

	// A replica opened afresh agrees on the revision, deletions included.
	fresh := openStore(t, c.Endpoints(), nil)
	if msg := same(a, fresh); msg != "" {
		t.Fatalf("fresh replica: %s", msg)
	}
}

// Keys written by hand that are not valid servers are skipped, logged by key and
// counted; the valid ones are served.
func TestInvalidKeys(t *testing.T) {
	c := etcdtest.Start(t, 3)
	cli := c.Client(t)
	ctx := context.Background()
	for k, v := range map[string]string{
		"/t/servers/bad name":  `{"host":"bad name","ipAddress":"10.0.0.1:80"}`,
		"/t/servers/not-json":  `{"host":`,
		"/t/servers/mismatch":  `{"host":"other","ipAddress":"10.0.0.1:80"}`,
		"/t/servers/bad-addr":  `{"host":"bad-addr","ipAddress":"not an address"}`,
		"/t/servers/good-1":    `{"host":"good-1","ipAddress":"10.0.0.1:80","serviceName":"s"}`,
		"/t/servers/@whatever": `x`,
	} {
		if _, err := cli.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	var log logbuf.Buffer
	s := openStore(t, c.Endpoints(), &log)
	if got := s.Current(); got.Len() != 1 || targetOf(s, "good-1") != "10.0.0.1:80" {
		t.Fatalf("served %d servers, want only good-1", got.Len())
	}
	if s.InvalidKeys() != 5 {
		t.Fatalf("InvalidKeys %d, want 5", s.InvalidKeys())
	}
	for _, k := range []string{"bad name", "not-json", "mismatch", "bad-addr", "@whatever"} {
		if !bytes.Contains([]byte(log.String()), []byte("/t/servers/"+k)) {
			t.Errorf("no log line names key %s; log:\n%s", k, log.String())
		}
	}
	// Through the watch: one more bad key counted, a fixed one served.
	if _, err := cli.Put(ctx, "/t/servers/late", `{}`); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/t/servers/bad-addr", `{"host":"bad-addr","ipAddress":"10.0.0.9:80"}`); err != nil {
		t.Fatal(err)
	}
	wait.Eventually(t, 5*time.Second, func() string {
		if n := s.InvalidKeys(); n != 5 {
			return fmt.Sprintf("InvalidKeys %d, want 5", n)
		}
		if targetOf(s, "bad-addr") == "" {
			return "bad-addr, fixed, is not served"
		}
		return ""
	})

}

// Every member stopped: writes fail naming etcd within the timeout, the last table is
// still served; members back: writes go through and the table follows again.
func TestUnreachable(t *testing.T) {
	c := etcdtest.Start(t, 3)
	s := openStore(t, c.Endpoints(), nil)
	o := put(t, s, "web-1", "10.0.0.1:80")
	c.Stop()
	start := time.Now()
	out := s.Write(store.Change{Name: "web-2", Server: &store.Server{Target: "10.0.0.2:80"}})
	if !errors.Is(out.Err, store.ErrUnavailable) || !bytes.Contains([]byte(out.Err.Error()), []byte("etcd")) {
		t.Fatalf("write with etcd stopped: %v, want store.ErrUnavailable naming etcd", out.Err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the failing write took %v", took)
	}
	if got := s.Current(); got.Revision() != o.Revision || got.Len() != 1 {
		t.Fatalf("table while etcd is down: revision %d, %d servers; want the last one (%d, 1)", got.Revision(), got.Len(), o.Revision)
	}
	wait.Eventually(t, 10*time.Second, func() string {
		if s.Reachable() {
			return "Reachable() still true with every member stopped"
		}
		return ""
	})

	c.Restart()
	wait.Eventually(t, 30*time.Second, func() string {
		out := s.Write(store.Change{Name: "web-2", Server: &store.Server{Target: "10.0.0.2:80"}})
		if out.Err != nil {
			return out.Err.Error()
		}
		if targetOf(s, "web-2") == "" {
			return "web-2 acknowledged but not in the table"
		}
		return ""
	})

}

// A replica whose watch falls behind a compaction reads the table afresh and
// converges; it never skips the compacted events.
func TestCompactionPastReplica(t *testing.T) {
	c := etcdtest.Start(t, 3)
	lag := c.Members[0]
	// This replica talks to one member only; with that member down it sees nothing.
	var log logbuf.Buffer
	s := openStore(t, []string{lag.ClientURL}, &log)
	w := openStore(t, c.Endpoints()[1:], nil)
	put(t, w, "web-1", "10.0.0.1:80")
	wait.Eventually(t, 5*time.Second, func() string { return same(w, s) })

	lag.Kill()
	c.WaitHealthy()
	put(t, w, "web-2", "10.0.0.2:80")
	del := w.Write(store.Change{Name: "web-1", MustExist: true})
	if del.Err != nil {
		t.Fatal(del.Err)
	}
	last := put(t, w, "web-3", "10.0.0.3:80")
	// Compact through the other members' client.
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints()[1:], DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Compact(context.Background(), int64(last.Revision), clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	lag.Start()
	c.WaitHealthy()
	wait.Eventually(t, 30*time.Second, func() string { return same(w, s) })
	if !bytes.Contains([]byte(log.String()), []byte("compacted")) {
		t.Fatalf("the lagging replica converged without a full read after compaction; log:\n%s", log.String())
	}
}

// etcd restored from an older backup: its revision goes back; the replicas notice,
// read the table afresh, take a new lineage and agree again.
func TestRestoredBackup(t *testing.T) {
	c := etcdtest.Start(t, 3)
	a := openStore(t, c.Endpoints(), nil)
	b := openStore(t, c.Endpoints(), nil)
	put(t, a, "web-1", "10.0.0.1:80")
	lineage := a.Lineage()
	backup := c.Backup()
	wait.Eventually(t, 30*time.Second, func() string {
		out := a.Write(store.Change{Name: "web-2", Server: &store.Server{Target: "10.0.0.2:80"}})
		if out.Err != nil {
			return out.Err.Error()
		}
		return ""
	})

	put(t, a, "web-3", "10.0.0.3:80")
	c.RestoreBackup(backup)
	wait.Eventually(t, 30*time.Second, func() string {
		for _, s := range []*Store{a, b} {
			if s.Lineage() == lineage {
				return "lineage unchanged after the restore"
			}
			if targetOf(s, "web-3") != "" || s.Current().Len() != 1 {
				return fmt.Sprintf("%d servers, want web-1 only", s.Current().Len())
			}
		}
		return same(a, b)
	})

}

// A server deleted by hand (etcdctl del): a replica that follows and one that reads
// the table afresh afterwards answer the same revision, the deletion's.
func TestHandRemovalSameRevision(t *testing.T) {
	c := etcdtest.Start(t, 3)
	a := openStore(t, c.Endpoints(), nil)
	put(t, a, "web-1", "10.0.0.1:80")
	put(t, a, "web-2", "10.0.0.2:80")
	cli := c.Client(t)
	r, err := cli.Delete(context.Background(), "/t/servers/web-2")
	if err != nil || r.Deleted != 1 {
		t.Fatalf("delete by hand: %v %v", r, err)
	}
	// Unrelated keys move etcd's revision, not the table's.
	if _, err := cli.Put(context.Background(), "/elsewhere", "x"); err != nil {
		t.Fatal(err)
	}
	wait.Eventually(t, 5*time.Second, func() string {
		if a.Current().Revision() != uint64(r.Header.Revision) {
			return fmt.Sprintf("following replica at %d, want the deletion's %d", a.Current().Revision(), r.Header.Revision)
		}
		return ""
	})

	fresh := openStore(t, c.Endpoints(), nil)
	if msg := same(a, fresh); msg != "" {
		t.Fatalf("replica reading afresh: %s", msg)
	}
	// Even with that history compacted, replicas reading afresh agree with each other.
	c.Compact(c.Revision())
	f1, f2 := openStore(t, c.Endpoints(), nil), openStore(t, c.Endpoints(), nil)
	if msg := same(f1, f2); msg != "" {
		t.Fatalf("after compaction: %s", msg)
	}
}

// Deltas come from the changes the watch delivered; pages from the table at a
// revision, kept while pages of it are asked for.
func TestDeltaAndPage(t *testing.T) {
	c := etcdtest.Start(t, 3)
	a := openStore(t, c.Endpoints(), nil)
	b := openStore(t, c.Endpoints(), nil)
	put(t, a, "web-1", "10.0.0.1:80")
	put(t, a, "web-2", "10.0.0.2:80")
	from := put(t, a, "gone", "10.0.0.9:80").Revision
	put(t, a, "web-1", "10.0.0.11:80")
	put(t, a, "temp", "10.0.0.8:80")
	if out := a.Write(store.Change{Name: "temp", MustExist: true}); out.Err != nil {
		t.Fatal(out.Err)
	}
	if out := a.Write(store.Change{Name: "gone", MustExist: true}); out.Err != nil {
		t.Fatal(out.Err)
	}
	wait.Eventually(t, 5*time.Second, func() string { return same(a, b) })
	for _, s := range []*Store{a, b} {
		d, ok := s.Delta(from, 1<<20)
		if !ok {
			t.Fatalf("no delta from %d (current %d)", from, s.Current().Revision())
		}
		want := fmt.Sprint(store.Delta{From: from, Revision: s.Current().Revision(),
			Upserts: []store.Route{{Name: "web-1", Target: "10.0.0.11:80"}}, Removals: []string{"gone"}})
		if got := fmt.Sprint(d); got != want {
			t.Fatalf("delta %s, want %s", got, want)
		}
		if _, ok := s.Delta(from, 5); ok {
			t.Fatal("a delta larger than maxBytes was given")
		}
	}
	// A replica opened now holds no history from before its full read.
	fresh := openStore(t, c.Endpoints(), nil)
	if _, ok := fresh.Delta(from, 1<<20); ok {
		t.Fatal("a replica that read the table afresh answered a delta from before its read")
	}
	rev := a.Current().Revision()
	p1, err := a.Page(rev, "", store.EncodedSize("web-1", "10.0.0.11:80"))
	if err != nil || len(p1.Routes) != 1 || p1.Routes[0].Name != "web-1" || p1.Next != "web-2" {
		t.Fatalf("first page: %+v %v", p1, err)
	}
	put(t, a, "web-3", "10.0.0.3:80")
	p2, err := a.Page(rev, p1.Next, 1<<20)
	if err != nil || p2.Revision != rev || len(p2.Routes) != 1 || p2.Routes[0].Name != "web-2" || p2.Next != "" {
		t.Fatalf("second page of the pinned revision after a write: %+v %v", p2, err)
	}
	if _, err := a.Page(rev-1, "", 100); !errors.Is(err, store.ErrSnapshotGone) {
		t.Fatalf("page of a revision never handed out: %v, want ErrSnapshotGone", err)
	}
}

// Replace swaps the whole table in one transaction and gives every replica a new
// lineage with the new table; a server with the same content keeps its updatedAt.
func TestReplaceNewLineageOnEveryReplica(t *testing.T) {
	c := etcdtest.Start(t, 1)
	a := openStore(t, c.Endpoints(), nil)
	b := openStore(t, c.Endpoints(), nil)
	put(t, a, "web-1", "10.0.0.1:80")
	kept := put(t, a, "web-2", "10.0.0.2:80")
	old := a.Lineage()
	before := b.Current()
	out := b.Replace([]store.Server{{Name: "web-2", Target: "10.0.0.2:80", Service: "svc"}, {Name: "web-3", Target: "10.0.0.3:80", Service: "new"}})
	if out.Err != nil || !out.Changed || out.Revision <= kept.Revision {
		t.Fatalf("Replace = %+v", out)
	}
	if b.Lineage() == old || b.Current().Revision() != out.Revision {
		t.Fatalf("replica b after Replace: lineage %s (was %s) at %d, want a new one at %d", b.Lineage(), old, b.Current().Revision(), out.Revision)
	}
	select {
	case <-before.Changed():
	default:
		t.Fatal("the table before the replacement was not superseded")
	}
	wait.Eventually(t, 5*time.Second, func() string { return same(a, b) })
	cur := a.Current()
	if _, ok := cur.Get("web-1"); ok || cur.Len() != 2 || targetOf(a, "web-3") != "10.0.0.3:80" {
		t.Fatalf("after Replace: %d servers, web-3=%q", cur.Len(), targetOf(a, "web-3"))
	}
	if sv, _ := cur.Get("web-2"); !sv.UpdatedAt.Equal(kept.New[0].UpdatedAt) {
		t.Fatalf("web-2's updatedAt moved: %v, was %v", sv.UpdatedAt, kept.New[0].UpdatedAt)
	}
	if out := a.Replace([]store.Server{{Name: "x", Target: "10.0.0.5", Service: "s"}, {Name: "x", Target: "10.0.0.6", Service: "s"}}); out.Err == nil || !strings.Contains(out.Err.Error(), `"x"`) {
		t.Fatalf("a name twice: %v, want a refusal naming it", out.Err)
	}
}
