package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
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
	s := threeServers(t, path)
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
	var logs bytes.Buffer
	s2 := openT(t, path, EmbeddedOptions{Init: true, Options: Options{Log: slog.New(slog.NewTextHandler(&logs, nil))}})
	if !strings.Contains(logs.String(), "old_lineage="+oldLineage) {
		t.Errorf("the -init warning does not name the old lineage %s:\n%s", oldLineage, logs.String())
	}
	if s2.Current().Len() != 0 || s2.Current().Revision() < 3 || s2.Lineage() == oldLineage {
		t.Fatalf("after -init: %d servers at revision %d, lineage %s (old %s)", s2.Current().Len(), s2.Current().Revision(), s2.Lineage(), oldLineage)
	}
	if rev := set(t, s2, "fresh", "10.0.0.9"); rev != 5 {
		t.Fatalf("first write of the new history at revision %d, want 5 (above the 3 reached)", rev)
	}
	lineage := s2.Lineage()
	s2.Close()
	s3 := openT(t, path) // no -init needed now
	if s3.Lineage() != lineage || s3.Current().Revision() != 5 {
		t.Fatalf("reopened: %s at %d", s3.Lineage(), s3.Current().Revision())
	}
}

// A backup restored over later data is served as a new history (new lineage) at a
// revision above every one handed out.
func TestRestoredBackupGetsNewLineage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "servers.json")
	s := threeServers(t, path)
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

// Data that comes without its own lock record is another history than the one it
// was copied from: copied to two new places, or copied with its lock file (a copy has
// another inode), each start gets a lineage of its own, at a revision above the
// copy's. Data that is its lock file's own keeps its lineage, also when the record
// lags behind the data (it is not fsynced at every commit).
func TestCopiedDataGetsNewLineage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "servers.json")
	s := threeServers(t, path)
	orig := s.Lineage()
	s.Close()
	seen := map[string]bool{orig: true}
	for _, withLock := range []bool{false, false, true} {
		to := t.TempDir()
		copyData(t, dir, to)
		if withLock {
			b, _ := os.ReadFile(lockPath(path))
			os.WriteFile(lockPath(filepath.Join(to, "servers.json")), b, 0o600)
		}
		c := openT(t, filepath.Join(to, "servers.json"))
		if seen[c.Lineage()] || c.Current().Revision() <= 3 || c.Current().Len() != 3 {
			t.Fatalf("copy (lock copied too: %v): lineage %s (seen before: %v), revision %d, %d servers", withLock, c.Lineage(), seen[c.Lineage()], c.Current().Revision(), c.Current().Len())
		}
		seen[c.Lineage()] = true
		c.Close()
	}
	// The original, with its record set back a revision: still its own.
	lf, err := acquireLock(path)
	if err != nil {
		t.Fatal(err)
	}
	lf.record(orig, 2, true)
	lf.release()
	s = openT(t, path)
	if s.Lineage() != orig || s.Current().Revision() != 3 {
		t.Fatalf("reopened with a lagging record: lineage %s (was %s) at %d", s.Lineage(), orig, s.Current().Revision())
	}
}

// adoptData records data written by the test at path (lineage, revision) in its lock
// file, as the registrar that wrote it would have: it then opens in its own lineage.
func adoptData(t *testing.T, path, lineage string, rev uint64) {
	t.Helper()
	l, err := acquireLock(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	if err := l.record(lineage, rev, true); err != nil {
		t.Fatal(err)
	}
}

// threeServers opens the data at path and registers n0, n1 and n2 (10.0.0.1) in it.
func threeServers(t *testing.T, path string) *Embedded {
	t.Helper()
	s := openT(t, path)
	for i := range 3 {
		set(t, s, fmt.Sprintf("n%d", i), "10.0.0.1")
	}
	return s
}

// openErr opens the data at path (closing it again) and returns the error.
func openErr(path string) error {
	s, err := Open(path, EmbeddedOptions{})
	if err == nil {
		s.Close()
	}
	return err
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

// A data file, lock file or log segment that is a symbolic link (or not a regular
// file) is refused with an error naming it: following it would let a compaction
// replace the link by a file on another volume, or overwrite the link's target.
func TestRefusesSymlinksAndOtherFiles(t *testing.T) {
	for _, c := range []struct {
		name string
		file string // suffix after servers.json
		link bool   // a symbolic link to a real copy, else a directory
		want string
	}{
		{"data file link", "", true, "symbolic link"},
		{"lock file link", ".lock", true, "symbolic link"},
		{"log segment link", ".wal-00000000000000000001", true, "symbolic link"},
		{"data file directory", "", false, "not a regular file"},
		{"lock file directory", ".lock", false, "not a regular file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "servers.json")
			s := openT(t, path)
			set(t, s, "a", "10.0.0.1")
			s.Close()
			victim := path + c.file
			real := filepath.Join(t.TempDir(), "elsewhere")
			if err := os.Rename(victim, real); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(real)
			if c.link {
				if err := os.Symlink(real, victim); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Mkdir(victim, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := openErr(path); err == nil || !strings.Contains(err.Error(), victim) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open = %v, want a refusal naming %s as %q", err, victim, c.want)
			}
			if after, _ := os.ReadFile(real); !bytes.Equal(before, after) {
				t.Fatalf("the link's target was changed:\n%q\n%q", before, after)
			}
		})
	}
}

// The lock file removed while a store runs does not let a second store share the
// data: the running store holds a lock on its log segment too, which a second open
// finds taken. Also when the data has no segment yet, and when nothing was written.
func TestLockHoldsWithLockFileRemoved(t *testing.T) {
	for name, setup := range map[string]func(t *testing.T, path string) *Embedded{
		"after writes": func(t *testing.T, path string) *Embedded {
			s := openT(t, path)
			set(t, s, "a", "10.0.0.1")
			return s
		},
		"data without a segment": func(t *testing.T, path string) *Embedded {
			if err := os.WriteFile(path, []byte(`{"revision": 4, "lineage": "0123456789abcdef0123456789abcdef", "servers": []}`), 0o600); err != nil {
				t.Fatal(err)
			}
			return openT(t, path)
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "servers.json")
			s := setup(t, path)
			os.Remove(lockPath(path))
			if err := openErr(path); err == nil || !strings.Contains(err.Error(), "in use by another registrar") {
				t.Fatalf("second Open with the lock file removed = %v, want a refusal", err)
			}
			set(t, s, "b", "10.0.0.2")
		})
	}
	t.Run("no data yet", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "servers.json")
		s := openT(t, path)
		os.Remove(lockPath(path))
		s2 := openT(t, path)
		set(t, s, "a", "10.0.0.1")
		if out := s2.Write(Change{Name: "b", Server: &Server{Target: "10.0.0.2", Service: "x"}}); out.Err == nil {
			t.Fatal("the second store wrote beside the first")
		}
		s.Close()
		s2.Close()
		wantTable(t, path, 1, map[string]string{"a": "10.0.0.1"})
	})
}

// A record whose revision was already applied, with other content, is two histories
// written into one log: the open refuses, naming the file and the offset. The same
// record twice is harmless and skipped.
func TestRefusesRepeatedRevisionWithOtherContent(t *testing.T) {
	path, seg, raw, at := twoRecords(t)
	last := raw[at:]
	same := append(append([]byte(nil), raw...), last...)
	os.WriteFile(seg, same, 0o600)
	wantTable(t, path, 2, map[string]string{"a": "10.0.0.1", "b": "10.0.0.2"})
	other, err := appendRecord(nil, logRecord{Rev: 2, Ops: []logOp{{Name: "c", Server: &Server{Name: "c", Target: "10.0.0.3", Service: "x"}}}})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(seg, append(same, other...), 0o600)
	_, err = Open(path, EmbeddedOptions{})
	want := fmt.Sprintf("byte %d", len(same))
	if err == nil || !strings.Contains(err.Error(), seg) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "revision 2") {
		t.Fatalf("Open = %v, want a refusal naming %s, %s and revision 2", err, seg, want)
	}
}

// Replace swaps the whole table in one write with a new lineage above the current
// revision; no delta reaches across it; the log goes on after it and a reopen keeps
// the new history as it is.
func TestReplaceStartsNewLineage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "servers.json")
	s := openT(t, path, EmbeddedOptions{CompactAt: 300})
	for i := range 5 {
		set(t, s, fmt.Sprintf("n%d", i), "10.0.0.1")
	}
	old, before := s.Lineage(), s.Current()
	out := s.Replace([]Server{{Name: "c", Target: "10.0.0.3", Service: "x"}, {Name: "d", Target: "10.0.0.4", Service: "y"}})
	if out.Err != nil || out.Revision != 6 || !out.Changed {
		t.Fatalf("Replace = %+v", out)
	}
	select {
	case <-before.Changed():
	default:
		t.Fatal("the table before the replacement was not superseded")
	}
	cur := s.Current()
	if s.Lineage() == old || cur.Revision() != 6 || cur.Len() != 2 {
		t.Fatalf("after Replace: lineage %s (was %s), revision %d, %d servers", s.Lineage(), old, cur.Revision(), cur.Len())
	}
	if sv, _ := cur.Get("d"); sv.Service != "y" || sv.UpdatedAt.IsZero() {
		t.Fatalf("d = %+v", sv)
	}
	if _, ok := s.Delta(5, 1<<20); ok {
		t.Fatal("a delta reaches across the replacement")
	}
	if out := s.Replace([]Server{{Name: "e", Target: "10.0.0.5", Service: "x"}, {Name: "e", Target: "10.0.0.6", Service: "x"}}); out.Err == nil || !strings.Contains(out.Err.Error(), `"e"`) {
		t.Fatalf("a name twice: %v, want a refusal naming it", out.Err)
	}
	if out := s.Replace([]Server{{Name: "bad name", Target: "10.0.0.5", Service: "x"}}); out.Err == nil || !strings.Contains(out.Err.Error(), "bad name") {
		t.Fatalf("a bad name: %v, want a refusal naming it", out.Err)
	}
	rev := set(t, s, "after", "10.0.0.9")
	lineage := s.Lineage()
	s.Close()
	wantTable(t, path, rev, map[string]string{"c": "10.0.0.3", "d": "10.0.0.4", "after": "10.0.0.9"})
	s2 := openT(t, path)
	if s2.Lineage() != lineage || s2.Current().Revision() != rev {
		t.Fatalf("reopened: lineage %s at %d, want %s at %d", s2.Lineage(), s2.Current().Revision(), lineage, rev)
	}
}

// Fork keeps the table as the writer has it under a new lineage one revision up, and
// the history starts over.
func TestForkKeepsTheTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "servers.json")
	s := openT(t, path)
	set(t, s, "a", "10.0.0.1")
	set(t, s, "b", "10.0.0.2")
	old := s.Lineage()
	out := s.Fork("test")
	if out.Err != nil || out.Revision != 3 || s.Lineage() == old || s.Current().Len() != 2 {
		t.Fatalf("Fork = %+v; lineage %s (was %s), %d servers", out, s.Lineage(), old, s.Current().Len())
	}
	if _, ok := s.Delta(2, 1<<20); ok {
		t.Fatal("a delta reaches across the fork")
	}
	s.Close()
	wantTable(t, path, 3, map[string]string{"a": "10.0.0.1", "b": "10.0.0.2"})
}
