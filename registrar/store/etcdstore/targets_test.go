package etcdstore

import (
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testkit/etcdtest"
	"switchyard/internal/testkit/wait"
	"switchyard/registrar/store"
)

// An etcd key written before target sets (one ipAddress) loads unchanged; a set
// written by one replica is the same on the other and on a replica opened afresh; a
// key holding a set no write could make is skipped like any invalid key; and the
// etcd store answers pages and deltas exactly as the embedded store does for the same
// writes.
func TestTargetsInEtcd(t *testing.T) {
	c := etcdtest.Start(t, 1)
	cli := c.Client(t)
	const prefix = "/t/servers/"
	if _, err := cli.Put(t.Context(), prefix+"old-1", `{"host":"old-1","ipAddress":"10.1.2.3:8080","serviceName":"logs","updatedAt":"2026-11-01T10:00:00Z"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(t.Context(), prefix+"bad-1", `{"host":"bad-1","ipAddress":"10.0.0.1","targets":[{"address":"10.0.0.1","weight":500,"state":"active"}],"serviceName":"logs"}`); err != nil {
		t.Fatal(err)
	}
	a := openStore(t, c.Endpoints(), nil)
	b := openStore(t, c.Endpoints(), nil)
	old, ok := a.Current().Get("old-1")
	if !ok || old.Targets != nil || old.Route() != "10.1.2.3:8080" || len(old.TargetList()) != 1 {
		t.Fatalf("the old key loaded as %+v (%v)", old, ok)
	}
	if _, ok := a.Current().Get("bad-1"); ok || a.InvalidKeys() != 1 {
		t.Fatalf("a key with weight 500: served %v, %d invalid keys; want skipped", ok, a.InvalidKeys())
	}

	emb, err := store.Open(filepath.Join(t.TempDir(), "servers.json"), store.EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	emb.Write(store.Change{Name: "old-1", Server: &old})

	writes := [][]store.Change{
		{{Name: "web", Server: server("web", "shop", "10.0.0.1:8080/90", "10.0.0.2:8080/10", "green.internal/1/d")}},
		{{Name: "one", Server: server("one", "logs", "10.0.0.9/1")}},
		{{Name: "web", Update: patchWeight("10.0.0.2:8080", 20)}},
		{{Name: "one", Update: patchWeight("10.0.0.9", 0)}, {Name: "old-1"}},
	}
	type mark struct{ etcd, emb uint64 }
	var marks []mark
	for i, w := range writes {
		marks = append(marks, mark{a.Current().Revision(), emb.Current().Revision()})
		oa, oe := a.Write(w...), emb.Write(w...)
		if oa.Err != nil || oe.Err != nil || oa.Changed != oe.Changed {
			t.Fatalf("write %d: etcd %+v, embedded %+v", i, oa, oe)
		}
	}
	wait.Eventually(t, 5*time.Second, func() string { return same(a, b) })
	if msg := same(a, openStore(t, c.Endpoints(), nil)); msg != "" {
		t.Fatal("a replica opened afresh:", msg)
	}
	routes := func(s store.Store) []store.Route {
		p, err := s.Page(s.Current().Revision(), "", 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		return p.Routes
	}
	want := []store.Route{{Name: "one", Target: "*10.0.0.9/0"}, {Name: "web", Target: "*10.0.0.1:8080/90,10.0.0.2:8080/20,green.internal/1/d"}}
	if got := routes(a); !reflect.DeepEqual(got, want) || !reflect.DeepEqual(routes(emb), want) {
		t.Fatalf("pages: etcd %v, embedded %v, want %v", got, routes(emb), want)
	}
	for i, m := range marks[1:] {
		de, okE := a.Delta(m.etcd, 1<<20)
		dm, okM := emb.Delta(m.emb, 1<<20)
		if !okE || !okM || !reflect.DeepEqual(de.Upserts, dm.Upserts) || !slices.Equal(de.Removals, dm.Removals) {
			t.Fatalf("delta after write %d: etcd %+v (%v), embedded %+v (%v)", i+1, de, okE, dm, okM)
		}
	}
}

// server is a store server from "address/weight[/d]" entries.
func server(name, service string, entries ...string) *store.Server {
	var ts []store.Target
	for _, e := range entries {
		f := strings.Split(e, "/")
		w, _ := strconv.Atoi(f[1])
		t := store.Target{Address: f[0], Weight: w, State: store.StateActive}
		if len(f) == 3 && f[2] == "d" {
			t.State = store.StateDraining
		}
		ts = append(ts, t)
	}
	sv := store.NewServer(name, service, ts)
	return &sv
}

// patchWeight is an Update that sets one target's weight.
func patchWeight(address string, weight int) func(*store.Server) (*store.Server, error) {
	return func(old *store.Server) (*store.Server, error) {
		ts := slices.Clone(old.TargetList())
		for i := range ts {
			if ts[i].Address == address {
				ts[i].Weight = weight
			}
		}
		sv := store.NewServer(old.Name, old.Service, ts)
		return &sv, nil
	}
}
