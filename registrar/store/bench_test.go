package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// Benchmarks behind the choice of a log plus copy-on-write B-tree (see Embedded):
//
//	go test -run '^$' -bench 'BenchmarkCommit|BenchmarkRewriteWholeFile' -benchtime 200x ./registrar/store/
//
// BenchmarkCommit is one acknowledged write (apply, append, fsync, publish) on a
// table of 10 and 100,000 names; BenchmarkRewriteWholeFile is what one commit cost
// before (the whole table written and fsynced, temporary file and rename).

// tableOf builds a table of n names at revision n.
func tableOf(n int) *Table {
	tr := newTree()
	now := time.Now().UTC()
	for i := range n {
		tr.ReplaceOrInsert(Server{Name: fmt.Sprintf("name-%07d", i), Target: fmt.Sprintf("10.%d.%d.%d:8080", i/62500%250, i/250%250, i%250+1), Service: "bench", UpdatedAt: now})
	}
	return &Table{revision: uint64(n), tree: tr, changed: make(chan struct{})}
}

// openWith writes a data file holding n names and opens it.
func openWith(b *testing.B, n int) *Embedded {
	path := filepath.Join(b.TempDir(), "servers.json")
	if _, err := writeSnapshot(path, newLineage(), tableOf(n)); err != nil {
		b.Fatal(err)
	}
	s, err := Open(path, EmbeddedOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func BenchmarkCommit(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		b.Run(fmt.Sprintf("names=%d", n), func(b *testing.B) {
			s := openWith(b, n)
			b.ResetTimer()
			for i := range b.N {
				out := s.Write(Change{Name: fmt.Sprintf("name-%07d", i%n), Server: &Server{Target: fmt.Sprintf("10.9.%d.%d", i/250%250, i%250+1), Service: "changed"}})
				if out.Err != nil || !out.Changed {
					b.Fatalf("%+v", out)
				}
			}
		})
	}
}

func BenchmarkRewriteWholeFile(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		b.Run(fmt.Sprintf("names=%d", n), func(b *testing.B) {
			t := tableOf(n)
			path := filepath.Join(b.TempDir(), "servers.json")
			b.ResetTimer()
			for range b.N {
				if _, err := writeSnapshot(path, "00000000000000000000000000000000", t); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
