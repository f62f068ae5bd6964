package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A second store on the same data is refused, naming the holder's pid; once the
// first is closed the data opens again.
func TestLockRefusesSecondStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "servers.json")
	s := openT(t, path)
	set(t, s, "a", "10.0.0.1")
	_, err := Open(path, EmbeddedOptions{})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("in use by another registrar (pid %d", os.Getpid())) {
		t.Fatalf("second Open = %v, want a refusal naming pid %d", err, os.Getpid())
	}
	s.Close()
	s2 := openT(t, path)
	if s2.Current().Len() != 1 {
		t.Fatal("the data did not open after the first store closed")
	}
}

// A store opened where the folder does not exist yet takes the lock at its first
// write; a second store made meanwhile cannot write.
func TestLockTakenAtFirstWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "servers.json")
	s1 := openT(t, path)
	s2 := openT(t, path)
	set(t, s1, "a", "10.0.0.1")
	out := s2.Write(Change{Name: "b", Server: &Server{Target: "10.0.0.2", Service: "x"}})
	if !errors.Is(out.Err, ErrNotSaved) || !strings.Contains(out.Err.Error(), "in use by another registrar") {
		t.Fatalf("second store's write: %v, want a refusal", out.Err)
	}
}

// Data that existed and is gone is not silently replaced by an empty table: the open
// is refused unless -init, which starts a new lineage at a revision that still grows.
func TestMissingDataRefusedUnlessInit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "servers.json")
	s := openT(t, path)
	for i := range 3 {
		set(t, s, fmt.Sprintf("n%d", i), "10.0.0.1")
	}
	oldLineage := s.Lineage()
	s.Close()
	segs, _ := listSegments(path)
	for _, sg := range segs {
		os.Remove(sg.path)
	}
	os.Remove(path)
	_, err := Open(path, EmbeddedOptions{})
	if err == nil || !strings.Contains(err.Error(), "is missing") || !strings.Contains(err.Error(), "-init") {
		t.Fatalf("Open = %v, want a refusal pointing to -init", err)
	}
	s2 := openT(t, path, EmbeddedOptions{Init: true})
	if s2.Current().Len() != 0 || s2.Current().Revision() < 3 || s2.Lineage() == oldLineage {
		t.Fatalf("after -init: %d servers at revision %d, lineage %s (old %s)", s2.Current().Len(), s2.Current().Revision(), s2.Lineage(), oldLineage)
	}
	if rev := set(t, s2, "fresh", "10.0.0.9"); rev != 4 {
		t.Fatalf("first write of the new history at revision %d, want 4", rev)
	}
	lineage := s2.Lineage()
	s2.Close()
	s3 := openT(t, path) // no -init needed now
	if s3.Lineage() != lineage || s3.Current().Revision() != 4 {
		t.Fatalf("reopened: %s at %d", s3.Lineage(), s3.Current().Revision())
	}
}

// A backup restored over later data is served as a new history (new lineage) at a
// revision above every one handed out.
func TestRestoredBackupGetsNewLineage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "servers.json")
	s := openT(t, path)
	for i := range 3 {
		set(t, s, fmt.Sprintf("n%d", i), "10.0.0.1")
	}
	s.Close()
	backup := t.TempDir()
	copyData(t, dir, backup)
	s = openT(t, path)
	lineage := s.Lineage()
	for i := range 3 {
		set(t, s, fmt.Sprintf("later%d", i), "10.0.0.2")
	}
	s.Close()
	copyData(t, backup, dir)
	s2 := openT(t, path)
	if s2.Lineage() == lineage || s2.Current().Revision() < 6 || s2.Current().Len() != 3 {
		t.Fatalf("restored backup: lineage %s (was %s), revision %d, %d servers", s2.Lineage(), lineage, s2.Current().Revision(), s2.Current().Len())
	}
	if _, ok := s2.Current().Get("later0"); ok {
		t.Fatal("a name written after the backup is served")
	}
	rev := set(t, s2, "after-restore", "10.0.0.3")
	s2.Close()
	wantTable(t, path, rev, map[string]string{"n0": "10.0.0.1", "n1": "10.0.0.1", "n2": "10.0.0.1", "after-restore": "10.0.0.3"})
}

// copyData replaces the data files (data file and log, not the lock) in to by those in from.
func copyData(t *testing.T, from, to string) {
	t.Helper()
	old, _ := filepath.Glob(filepath.Join(to, "servers.json*"))
	for _, f := range old {
		if !strings.HasSuffix(f, ".lock") {
			os.Remove(f)
		}
	}
	files, _ := filepath.Glob(filepath.Join(from, "servers.json*"))
	for _, f := range files {
		if strings.HasSuffix(f, ".lock") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// Writes that would take the table past WithMaxServers fail whole; writes that do
// not add servers still go through.
func TestMaxServers(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "servers.json"), EmbeddedOptions{Options: Options{MaxServers: 2}})
	set(t, s, "a", "10.0.0.1")
	set(t, s, "b", "10.0.0.2")
	if out := s.Write(Change{Name: "c", Server: &Server{Target: "10.0.0.3", Service: "x"}}); !errors.Is(out.Err, ErrTableFull) {
		t.Fatalf("third server: %v, want ErrTableFull", out.Err)
	}
	set(t, s, "a", "10.0.0.11") // a replacement adds nothing
	out := s.Write(Change{Name: "b"}, Change{Name: "c", Server: &Server{Target: "10.0.0.3", Service: "x"}})
	if out.Err != nil {
		t.Fatalf("remove one, add one: %v", out.Err)
	}
	if cur := s.Current(); cur.Len() != 2 || cur.Revision() != 4 {
		t.Fatalf("%d servers at revision %d", cur.Len(), cur.Revision())
	}
}
