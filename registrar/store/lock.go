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
//   - A record of the data it guards: the holder's pid, the lineage and the highest
//     revision it reached (rewritten in place after every commit, fsynced when the
//     data is created). With it, a data file that is missing, or older than the
//     record (a restored backup), is noticed at the next start instead of the
//     registrar silently serving an older or empty history under the old name.
//     The revision is the last one recorded before a crash or shutdown, so a backup
//     restored over a later state is always noticed, one taken a few writes before a
//     crash may not be.

type lockRecord struct {
	PID      int
	Lineage  string
	Revision uint64
}

type lockFile struct {
	f    *os.File
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
	return &lockFile{f: f, prev: readLockRecord(f)}, nil
}

func readLockRecord(f *os.File) lockRecord {
	var r lockRecord
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 4096))
	if err != nil {
		return lockRecord{}
	}
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "pid %d lineage %s revision %d", &r.PID, &r.Lineage, &r.Revision); err != nil || !validLineage(r.Lineage) {
		return lockRecord{PID: r.PID}
	}
	return r
}

// record writes r in place (a fixed-width line, so no truncation is needed); sync
// makes it durable.
func (l *lockFile) record(r lockRecord, sync bool) error {
	if l == nil {
		return nil
	}
	line := fmt.Sprintf("pid %d lineage %s revision %d", r.PID, r.Lineage, r.Revision)
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
