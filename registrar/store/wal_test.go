package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func openT(t *testing.T, path string, opts ...EmbeddedOptions) *Embedded {
	t.Helper()
	var o EmbeddedOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	s, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func set(t *testing.T, s *Embedded, name, target string) uint64 {
	t.Helper()
	out := s.Write(Change{Name: name, Server: &Server{Target: target, Service: "svc"}})
	if out.Err != nil {
		t.Fatal(out.Err)
	}
	return out.Revision
}

// wantTable requires the table at path (read from disk) to be exactly want at rev.
func wantTable(t *testing.T, path string, rev uint64, want map[string]string) {
	t.Helper()
	gotRev, got, err := ReadData(path)
	if err != nil {
		t.Fatal(err)
	}
	if gotRev != rev || len(got) != len(want) {
		t.Fatalf("on disk: revision %d with %d servers, want %d with %d", gotRev, len(got), rev, len(want))
	}
	for h, a := range want {
		if got[h].Target != a {
			t.Fatalf("on disk: %s → %q, want %q", h, got[h].Target, a)
		}
	}
}

// A data file written by the registrar before the log existed loads as it is, is
// rewritten with a lineage at once, and the lineage and revision then hold.
func TestMigratesOldDataFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "servers.json")
	old := `{
  "revision": 7,
  "servers": [
    {"host": "web-1", "ipAddress": "10.1.2.3:8080", "serviceName": "logs", "updatedAt": "2026-11-01T10:00:00Z"},
    {"host": "web-2", "ipAddress": "web-2.internal", "serviceName": "로그", "updatedAt": "2026-11-02T10:00:00Z"}
  ]
}
`
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s := openT(t, path, EmbeddedOptions{Options: Options{Log: slog.New(slog.NewTextHandler(&logs, nil))}})
	cur := s.Current()
	if sv, _ := cur.Get("web-2"); cur.Revision() != 7 || cur.Len() != 2 || sv.Service != "로그" || sv.UpdatedAt.Day() != 2 {
		t.Fatalf("migrated table: revision %d, %d servers, web-2 %+v", cur.Revision(), cur.Len(), sv)
	}
	if !strings.Contains(logs.String(), "migrated the data file") {
		t.Errorf("no migration reported:\n%s", logs.String())
	}
	lineage := s.Lineage()
	if !validLineage(lineage) {
		t.Fatalf("lineage %q", lineage)
	}
	var onDisk struct{ Lineage string }
	raw, _ := os.ReadFile(path)
	if json.Unmarshal(raw, &onDisk); onDisk.Lineage != lineage {
		t.Fatalf("the data file holds lineage %q, the store %q:\n%s", onDisk.Lineage, lineage, raw)
	}
	if rev := set(t, s, "web-3", "10.1.2.5"); rev != 8 {
		t.Fatalf("first write after migration at revision %d, want 8", rev)
	}
	s.Close()
	s2 := openT(t, path)
	if s2.Lineage() != lineage || s2.Current().Revision() != 8 || s2.Current().Len() != 3 {
		t.Fatalf("reopened: lineage %s revision %d, %d servers; want %s, 8, 3", s2.Lineage(), s2.Current().Revision(), s2.Current().Len(), lineage)
	}
}

// A record a crash cut short at the end of the log was never acknowledged: the open
// drops it (and says so) and the revisions go on from the last whole record. So is a
// zero-filled tail (space the file system allocated that the data never reached),
// also when the end of the record did reach it.
func TestDropsTornLastRecord(t *testing.T) {
	for _, tail := range []string{
		`1234abcd {"rev":3,"ops":[{"ho`,                                      // cut short, no newline
		strings.Repeat("\x00", 4096),                                         // zero-filled
		strings.Repeat("\x00", 20) + `"ops":[{"host":"x"}]}` + "\n",          // the start never written
		`1234abcd {"rev":3,"ops":[{"ho` + strings.Repeat("\x00", 100) + "\n", // the middle never written
	} {
		path, seg, _, _ := twoRecords(t)
		f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(tail)
		f.Close()
		wantTable(t, path, 2, map[string]string{"a": "10.0.0.1", "b": "10.0.0.2"})

		var logs bytes.Buffer
		s2 := openT(t, path, EmbeddedOptions{Options: Options{Log: slog.New(slog.NewTextHandler(&logs, nil))}})
		if !strings.Contains(logs.String(), "dropped the last log record") {
			t.Errorf("the torn record was dropped silently:\n%s", logs.String())
		}
		if rev := set(t, s2, "c", "10.0.0.3"); rev != 3 {
			t.Fatalf("write after the torn record at revision %d, want 3", rev)
		}
		s2.Close()
		wantTable(t, path, 3, map[string]string{"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3"})
	}
}

// Damage before the end of the log is not a crash's doing: the open refuses, naming
// the file and the offset.
func TestRefusesDamagedLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "servers.json")
	s := openT(t, path)
	for i := range 3 {
		set(t, s, fmt.Sprintf("n%d", i), "10.0.0.1")
	}
	s.Close()
	segs, _ := listSegments(path)
	raw, _ := os.ReadFile(segs[0].path)
	raw[0] ^= 1 // the first record's checksum
	os.WriteFile(segs[0].path, raw, 0o600)
	_, err := Open(path, EmbeddedOptions{})
	if err == nil || !strings.Contains(err.Error(), segs[0].path) || !strings.Contains(err.Error(), "damaged at byte 0") {
		t.Fatalf("Open = %v, want the damaged log named", err)
	}
}

// A complete last record that fails its checksum was acknowledged (its newline was
// fsynced with it): it is damage, not a torn write, and the open refuses, naming the
// file and the record's offset.
func TestRefusesDamagedLastRecord(t *testing.T) {
	for name, damage := range map[string]func(raw []byte, last int) []byte{
		"a flipped byte": func(raw []byte, last int) []byte { raw[len(raw)-5] ^= 1; return raw },
		"a bad checksum": func(raw []byte, last int) []byte { raw[last] ^= 1; return raw },
		"an appended record": func(raw []byte, last int) []byte {
			return append(raw, `0badc0de {"rev":3,"ops":[{"host":"x"}]}`+"\n"...)
		},
	} {
		t.Run(name, func(t *testing.T) {
			path, seg, raw, last := twoRecords(t)
			want := fmt.Sprintf("damaged at byte %d", last)
			if name == "an appended record" {
				want = fmt.Sprintf("damaged at byte %d", len(raw))
			}
			os.WriteFile(seg, damage(raw, last), 0o600)
			_, err := Open(path, EmbeddedOptions{})
			if err == nil || !strings.Contains(err.Error(), seg) || !strings.Contains(err.Error(), want) {
				t.Fatalf("Open = %v, want a refusal naming %s and %q", err, seg, want)
			}
		})
	}
}

// twoRecords makes data with a log of two records (a → 10.0.0.1, b → 10.0.0.2) and
// closes it: the data path, the segment's path and bytes, and where its last record
// starts.
func twoRecords(t *testing.T) (path, seg string, raw []byte, last int) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "servers.json")
	s := openT(t, path)
	set(t, s, "a", "10.0.0.1")
	set(t, s, "b", "10.0.0.2")
	s.Close()
	segs, _ := listSegments(path)
	seg = segs[len(segs)-1].path
	raw, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	return path, seg, raw, bytes.LastIndexByte(raw[:len(raw)-1], '\n') + 1
}

// When the log passes the compaction size, the table goes to the data file and the
// old segments go; reopening gives the same table, also when a crash left the old
// segments behind.
func TestCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "servers.json")
	var logs bytes.Buffer
	s := openT(t, path, EmbeddedOptions{CompactAt: 2000, Options: Options{Log: slog.New(slog.NewTextHandler(&logs, nil))}})
	want := map[string]string{}
	for i := range 200 {
		name, addr := fmt.Sprintf("n%03d", i%70), fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
		set(t, s, name, addr)
		want[name] = addr
	}
	if out := s.Write(Change{Name: "n000", MustExist: true}); out.Err != nil {
		t.Fatal(out.Err)
	}
	delete(want, "n000")
	s.Close()
	if n := strings.Count(logs.String(), "compacted the log"); n < 3 {
		t.Fatalf("%d compactions, want several:\n%s", n, logs.String())
	}
	segs, _ := listSegments(path)
	if len(segs) > 2 {
		t.Errorf("%d log segments left after compaction: %v", len(segs), segs)
	}
	snap, err := readSnapshot(path, func(Server) error { return nil })
	if err != nil || snap.revision < 150 {
		t.Fatalf("data file after compaction: %+v %v", snap, err)
	}
	wantTable(t, path, 201, want)
	s2 := openT(t, path)
	if s2.Current().Revision() != 201 || s2.Current().Len() != len(want) {
		t.Fatalf("reopened at revision %d with %d servers", s2.Current().Revision(), s2.Current().Len())
	}
}

// A data file removed while its log stays is refused: starting empty would send the
// revision back to 0.
func TestRefusesLogWithoutDataFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "servers.json")
	s := openT(t, path)
	set(t, s, "a", "10.0.0.1")
	s.Close()
	os.Remove(path)
	if _, err := Open(path, EmbeddedOptions{}); err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("Open = %v, want a refusal", err)
	}
	// -init does not throw the log away: the refusal says what to move, then -init.
	_, err := Open(path, EmbeddedOptions{Init: true})
	if err == nil || !strings.Contains(err.Error(), "move "+path+".wal-* away") || !strings.Contains(err.Error(), "-init") {
		t.Fatalf("Open with -init = %v, want a refusal saying to move the log away and use -init", err)
	}
	segs, _ := listSegments(path)
	for _, sg := range segs {
		os.Rename(sg.path, sg.path+".old")
	}
	s2 := openT(t, path, EmbeddedOptions{Init: true})
	if s2.Current().Len() != 0 {
		t.Fatalf("-init after moving the log: %d servers", s2.Current().Len())
	}
}
