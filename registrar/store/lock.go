package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// The lock file, <data file>.lock, does two things:
//
//   - An exclusive flock on it while a store has the data open, so a second
//     registrar on the same -data is refused instead of acknowledging writes that
//     the first one's log would then lose. The lock goes with the process (also on
//     SIGKILL); the file stays.
//   - A record of the data it guards: the holder's pid, the lineage, the highest
//     revision it reached (rewritten in place after every commit, fsynced when the
//     data is created) and the lock file's own inode. A start that does not find its
//     own record matching the data forks a new lineage (Open): data that is missing,
//     older than the record (a restored backup), of another lineage, or that comes
//     without its record (copied or restored to another volume, or with a copy of
//     the lock file, which has another inode) is another history than the one
//     proxies may hold, and must not be served under its name.

type lockRecord struct {
	PID      int
	Lineage  string
	Revision uint64
	Inode    uint64 // of the lock file that holds the record; 0 in a record of an older registrar
}

type lockFile struct {
	f    *os.File
	ino  uint64     // the lock file's inode
	prev lockRecord // what the file held when the lock was taken
}

func lockPath(dataPath string) string { return dataPath + ".lock" }

// acquireLock takes the lock of the data at dataPath, or says who holds it.
func acquireLock(dataPath string) (*lockFile, error) {
	name := lockPath(dataPath)
	f, err := openRegular(name, os.O_RDWR|os.O_CREATE, 0o600, "lock file")
	if err != nil {
		return nil, err // it names the file
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		rec := readLockRecord(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "pid unknown"
			if rec.PID > 0 {
				holder = fmt.Sprintf("pid %d", rec.PID)
			}
			return nil, fmt.Errorf("the data %s is in use by another registrar (%s, holding %s); stop that one first, or give this one another -data", dataPath, holder, name)
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return &lockFile{f: f, ino: st.Ino, prev: readLockRecord(f)}, nil
}

func readLockRecord(f *os.File) lockRecord {
	var r lockRecord
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 4096))
	if err != nil {
		return lockRecord{}
	}
	line := strings.TrimSpace(string(b))
	if _, err := fmt.Sscanf(line, "pid %d lineage %s revision %d inode %d", &r.PID, &r.Lineage, &r.Revision, &r.Inode); err != nil {
		r.Inode = 0 // the record of an older registrar has no inode
		if _, err := fmt.Sscanf(line, "pid %d lineage %s revision %d", &r.PID, &r.Lineage, &r.Revision); err != nil {
			return lockRecord{PID: r.PID}
		}
	}
	if !validLineage(r.Lineage) {
		return lockRecord{PID: r.PID}
	}
	return r
}

// owns says whether this lock file's record is the record of data at lineage and
// revision: the same lineage, a revision not above the data's (the record is not
// fsynced at every commit, so after a power loss it may lag behind), written into
// this very file.
func (l *lockFile) owns(lineage string, revision uint64) bool {
	p := l.prev
	return p.Lineage == lineage && p.Revision <= revision && (p.Inode == 0 || p.Inode == l.ino)
}

// record writes the record of this process's data at lineage and rev in place (a
// fixed-width line, so no truncation is needed); sync makes it durable.
func (l *lockFile) record(lineage string, rev uint64, sync bool) error {
	if l == nil {
		return nil
	}
	r := lockRecord{PID: os.Getpid(), Lineage: lineage, Revision: rev}
	line := fmt.Sprintf("pid %d lineage %s revision %d inode %d", r.PID, r.Lineage, r.Revision, l.ino)
	b := []byte(fmt.Sprintf("%-100s\n", line))
	if _, err := l.f.WriteAt(b, 0); err != nil {
		return err
	}
	if sync {
		return l.f.Sync()
	}
	return nil
}

func (l *lockFile) release() {
	if l != nil {
		l.f.Close() // closing the only descriptor releases the flock
	}
}

// lockSegment takes an exclusive flock on the open log segment f, held as long as the
// store appends to it (etcd locks its WAL files the same way). The lock file can be
// removed while a registrar runs; the segment it appends to cannot be removed without
// losing the data anyway, so a second registrar finds it locked.
func lockSegment(dataPath string, f *os.File) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("the data %s is in use by another registrar: its log %s is locked (was the lock file %s removed while that one ran?); stop that one first, or give this one another -data", dataPath, f.Name(), lockPath(dataPath))
		}
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return nil
}

// probeSegments refuses when a running store holds a log segment of the data at
// dataPath. It runs before anything at the path is read or changed.
func probeSegments(dataPath string) error {
	segs, err := listSegments(dataPath)
	if err != nil {
		return err
	}
	for _, sg := range segs {
		f, err := openRegular(sg.path, os.O_RDONLY, 0, "log segment")
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed by a compaction meanwhile
		}
		if err != nil {
			return err
		}
		err = lockSegment(dataPath, f)
		f.Close() // releases this probe's lock
		if err != nil {
			return err
		}
	}
	return nil
}
