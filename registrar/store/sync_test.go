package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func remove(t *testing.T, s *Embedded, name string) {
	t.Helper()
	if out := s.Write(Change{Name: name}); out.Err != nil {
		t.Fatal(out.Err)
	}
}

// A delta holds each name once, in its state at the delta's revision; a name that
// came and went after `after` is not in it; a removal is only of a name that was there.
func TestDeltaCompacts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "servers.json")
	s := openT(t, path)
	set(t, s, "a", "10.0.0.1")
	set(t, s, "b", "10.0.0.2") // revision 2
	set(t, s, "a", "10.0.0.11")
	set(t, s, "a", "10.0.0.12")
	remove(t, s, "b")
	set(t, s, "c", "10.0.0.3")
	remove(t, s, "c")
	set(t, s, "d", "10.0.0.4") // revision 8
	want := Delta{From: 2, Revision: 8,
		Upserts:  []Route{{"a", "10.0.0.12"}, {"d", "10.0.0.4"}},
		Removals: []string{"b"}}
	d, ok := s.Delta(2, 1<<20)
	if !ok || !reflect.DeepEqual(d, want) {
		t.Fatalf("Delta(2) = %+v %v, want %+v", d, ok, want)
	}
	if d, ok := s.Delta(7, 1<<20); !ok || !reflect.DeepEqual(d, Delta{From: 7, Revision: 8, Upserts: []Route{{"d", "10.0.0.4"}}}) {
		t.Fatalf("Delta(7) = %+v %v", d, ok)
	}
	if _, ok := s.Delta(2, 20); ok {
		t.Fatal("a delta larger than maxBytes was served")
	}
	if _, ok := s.Delta(8, 1<<20); ok {
		t.Fatal("a delta from the current revision was served")
	}
	// The changes after the data file come back from the log on restart.
	s.Close()
	s2 := openT(t, path)
	if d, ok := s2.Delta(2, 1<<20); !ok || !reflect.DeepEqual(d, want) {
		t.Fatalf("after restart Delta(2) = %+v %v, want %+v", d, ok, want)
	}
}

// Only the last WithHistory revisions are held; a client behind them gets "not held".
func TestDeltaRetention(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "servers.json"), EmbeddedOptions{Options: Options{History: 3}})
	for i := range 6 {
		set(t, s, fmt.Sprintf("n%d", i), "10.0.0.1")
	}
	if _, ok := s.Delta(2, 1<<20); ok {
		t.Fatal("Delta(2) served with only 3 revisions held")
	}
	d, ok := s.Delta(3, 1<<20)
	if !ok || d.Revision != 6 || len(d.Upserts) != 3 {
		t.Fatalf("Delta(3) = %+v %v", d, ok)
	}
	// One write of more names than the history holds empties it.
	var many []Change
	for i := range 5 {
		many = append(many, Change{Name: fmt.Sprintf("m%d", i), Server: &Server{Target: "10.0.0.2", Service: "x"}})
	}
	if out := s.Write(many...); out.Err != nil {
		t.Fatal(out.Err)
	}
	if _, ok := s.Delta(6, 1<<20); ok {
		t.Fatal("a delta of 5 names served from a history of 3")
	}
}

// Pages of one revision, asked for while writes go on, make exactly the table as it
// was at that revision, in name order, each page within maxBytes.
func TestPagesAtPinnedRevision(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "servers.json"))
	want := map[string]string{}
	for i := range 300 {
		name, addr := fmt.Sprintf("n%03d", i), fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
		set(t, s, name, addr)
		want[name] = addr
	}
	rev := s.Current().Revision()
	got := map[string]string{}
	start, pages, prev := "", 0, ""
	for {
		p, err := s.Page(rev, start, 500)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		size := 0
		for _, r := range p.Routes {
			if r.Name <= prev {
				t.Fatalf("page out of order: %q after %q", r.Name, prev)
			}
			prev = r.Name
			got[r.Name] = r.Target
			size += EncodedSize(r.Name, r.Target)
		}
		if p.Revision != rev || size > 500 {
			t.Fatalf("page at revision %d of %d bytes, want revision %d within 500", p.Revision, size, rev)
		}
		// Writes between pages: change, remove and add names on both sides of start.
		set(t, s, fmt.Sprintf("n%03d", pages), "10.9.9.9")
		remove(t, s, fmt.Sprintf("n%03d", 299-pages))
		set(t, s, fmt.Sprintf("m%03d", pages), "10.9.9.8")
		if p.Next == "" {
			break
		}
		start = p.Next
	}
	if pages < 10 || !reflect.DeepEqual(got, want) {
		t.Fatalf("%d pages gave %d names; want the %d names of revision %d", pages, len(got), len(want), rev)
	}
}

// A pinned revision is kept SnapshotKeep after its last page, then it is gone; a
// revision never handed out and long replaced is gone at once.
func TestPageSnapshotGone(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "servers.json"))
	now := time.Now()
	s.pins.now = func() time.Time { return now }
	set(t, s, "a", "10.0.0.1")
	rev := s.Current().Revision()
	if _, err := s.Page(rev, "", 100); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		set(t, s, fmt.Sprintf("n%d", i), "10.0.0.2")
	}
	now = now.Add(SnapshotKeep - time.Second)
	if p, err := s.Page(rev, "", 100); err != nil || len(p.Routes) != 1 {
		t.Fatalf("within SnapshotKeep: %+v %v", p, err)
	}
	now = now.Add(SnapshotKeep + time.Second)
	if _, err := s.Page(rev, "", 100); !errors.Is(err, ErrSnapshotGone) {
		t.Fatalf("after SnapshotKeep: %v, want ErrSnapshotGone", err)
	}
	if _, err := s.Page(rev+1, "", 100); !errors.Is(err, ErrSnapshotGone) {
		t.Fatalf("a revision never pinned: %v, want ErrSnapshotGone", err)
	}
}
