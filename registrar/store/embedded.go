package store

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/btree"
	"github.com/prometheus/client_golang/prometheus"

	"switchyard/internal/validate"
)

// Commit describes one durable commit, for an observer (metrics).
type Commit struct {
	Table  *Table        // the table the commit made current
	Writes int           // writes carried by the commit (group commit)
	Took   time.Duration // applying and making the batch durable
}

// EmbeddedOptions are the embedded store's settings: those both stores share, and
// its own.
type EmbeddedOptions struct {
	Options
	// CompactAt is how many bytes the log may grow to, at least, before it is
	// compacted into the data file (0: 8 MiB; the data file's size when larger).
	CompactAt int64
	// Init allows starting a new, empty table with a new lineage when the lock file
	// says data existed at the path and the data file is gone (-init). Without it
	// such a start is refused.
	Init bool
}

type writeOp struct {
	changes []Change
	replace *replaceOp // a replacement of the table (nil for a write of changes)
	done    chan WriteResult
}

// Embedded is the Store kept in local files: the data file (-data) holding the table
// at one revision and a write-ahead log of the changes after it (see datafile.go and
// wal.go). Reads are lock-free Tables; writes go through one writer goroutine that
// batches whatever writes are waiting into a single commit (group commit): one
// append to the log and one fsync, after which every write in it is acknowledged.
// When the log has grown past the data file's size (at least 8 MiB) the writer starts
// a new segment and a background compaction writes the table as of that revision to
// the data file (from an immutable Table, so writes go on meanwhile) and removes the
// older segments.
//
// Why a log and a B-tree, measured by bench_test.go (`make bench`): rewriting and
// fsyncing the whole data file per commit costs in proportion to the table
// (BenchmarkRewriteWholeFile, at 10 and 100,000 names), while appending a record of
// ~200 bytes and one fsync costs the same at both sizes (BenchmarkCommit): the cost
// follows the change. An embedded B+tree store such as bbolt would fsync
// twice per commit (pages, then the meta page), and keeps an old revision readable
// only while a read transaction pins it, which blocks the reuse of freed pages for
// the 60 s a paged full table must stay readable; the copy-on-write B-tree gives any
// number of pinned revisions for the cost of the nodes later writes copy, and the log
// is a small part of this package (wal.go), in a format a person can read.
type Embedded struct {
	path        string
	lineage     atomic.Pointer[string] // set by Open and then only by the writer
	cur         atomic.Pointer[Table]
	work        *btree.BTreeG[Server] // the writer's tree; only the writer touches it
	ops         chan writeOp
	quit        chan struct{}
	stopped     chan struct{}
	once        sync.Once
	closeOnce   sync.Once
	now         func() time.Time
	log         *slog.Logger
	onCommit    func(Commit)
	extraCheck  func(Server) error
	targetCheck func(Server) error
	refused     int // servers left out at open by targetCheck
	compactMin  int64
	historyRevs int
	hist        *history
	init        bool
	maxServers  int
	lock        *lockFile // nil until taken (at the first commit when the folder did not exist)
	pins        pins

	// Writer state.
	dataExists bool     // the data file exists (created by the first commit)
	seg        *os.File // the segment appended to; nil before the first commit
	segSize    int64    // bytes in seg
	snapBytes  atomic.Int64
	compacting sync.WaitGroup
	compactOn  atomic.Bool
	broken     error // the log could not be restored after a failed append
}

var _ Store = (*Embedded)(nil)

// maxBatch bounds how many waiting writes go into one commit.
const maxBatch = 1024

// Open loads the data file at path and the log beside it (a missing data file with
// no log is an empty table at revision 0), removing temporary files a crash left
// behind and dropping a record a crash cut short, and starts the writer. A data file
// of the old format (no lineage) is rewritten with a new lineage before Open returns.
func Open(path string, o EmbeddedOptions) (*Embedded, error) {
	s := &Embedded{
		path:        path,
		ops:         make(chan writeOp),
		quit:        make(chan struct{}),
		stopped:     make(chan struct{}),
		now:         func() time.Time { return time.Now().UTC() },
		log:         cmp.Or(o.Log, slog.New(slog.DiscardHandler)),
		onCommit:    o.OnCommit,
		extraCheck:  o.EntryCheck,
		targetCheck: o.TargetCheck,
		compactMin:  cmp.Or(o.CompactAt, 8<<20),
		historyRevs: cmp.Or(o.History, DefaultHistory),
		init:        o.Init,
		maxServers:  o.MaxServers,
	}
	ok := false
	defer func() {
		if !ok {
			s.lock.release()
		}
	}()
	// The lock comes first: temporary files and a torn record may be another running
	// registrar's.
	if _, err := os.Stat(filepath.Dir(path)); err == nil {
		if s.lock, err = acquireLock(path); err != nil {
			return nil, err
		}
		if err := probeSegments(path); err != nil {
			return nil, err
		}
	}
	removed, err := cleanStaleTemps(path)
	for _, f := range removed {
		s.log.Info("removed a stale temporary file left by an interrupted write", "file", f)
	}
	if err != nil {
		return nil, err
	}
	l, err := load(path, s.check, s.targetCheck, s.historyRevs)
	if err != nil {
		return nil, err
	}
	for _, r := range l.refused {
		s.log.Warn("a stored target is refused by the target policy and is not served: register the server again with an allowed target, or allow it with -allow-cidr (the next compaction drops it from the data file)", "host", r.server.Name, "ipAddress", r.server.Target, "file", r.file, "err", r.err)
	}
	s.refused = len(l.refused)
	var prev lockRecord
	if s.lock != nil {
		prev = s.lock.prev
	}
	startNewHistory := func(why string) {
		// A new lineage tells proxies this is another history; the revision goes on
		// above the highest one recorded, so that it is above any this data may have
		// been served at here.
		old := cmp.Or(l.lineage, prev.Lineage) // the lock file's when the data file is gone
		l.lineage = newLineage()
		l.revision = max(l.revision, prev.Revision) + 1
		l.hist = newHistory(l.revision, s.historyRevs)
		s.log.Warn(why, "data", path, "old_lineage", old, "new_lineage", l.lineage, "revision", l.revision, "servers", l.tree.Len())
	}
	switch {
	case !l.dataExists && prev.Lineage != "" && !s.init:
		return nil, fmt.Errorf("the data file %s is missing, but registrar data existed there (lineage %s, revision %d, recorded in %s): it was deleted or moved. Restore it from a backup, or start a new, empty history with -init (REGISTRAR_INIT=1); proxies will then take the new, empty table", path, prev.Lineage, prev.Revision, lockPath(path))
	case !l.dataExists && prev.Lineage != "":
		startNewHistory("-init: STARTING A NEW, EMPTY HISTORY although data existed here; every proxy will take the empty table")
		if err := s.createData(l.revision, l.lineage); err != nil {
			return nil, err
		}
		l.dataExists = true
	case !l.dataExists:
		s.log.Warn("no data file: starting a new, empty table (it is created by the first write)", "data", path)
	case l.lineage != "" && !s.lock.owns(l.lineage, l.revision):
		// Data this lock file does not record as its own may be a copy of a history
		// that goes on elsewhere, or one that went further here: serving it under its
		// lineage would let a proxy that holds the other history take deltas against
		// the wrong table.
		var why string
		switch {
		case prev.Lineage == "":
			why = "the lock file holds no record of this data (copied or restored to a new place?)"
		case prev.Lineage != l.lineage:
			why = "the lock file records another history, lineage " + prev.Lineage + " (data copied or restored from elsewhere?)"
		case prev.Revision > l.revision:
			why = fmt.Sprintf("THE DATA WENT BACK IN TIME (a restored backup?): it is at revision %d but revision %d was reached", l.revision, prev.Revision)
		default:
			why = "the lock file's record was written into another file (data and lock file copied or restored?)"
		}
		startNewHistory(why + "; serving it as a new history (new lineage) so every proxy takes it whole")
		t := &Table{revision: l.revision, tree: l.tree}
		n, err := writeSnapshot(path, l.lineage, t)
		if err != nil {
			return nil, fmt.Errorf("record the new history of %s: %w", path, err)
		}
		l.snapBytes = n
	}
	s.hist = l.hist
	if l.torn != nil {
		// Never acknowledged: a write is acknowledged only after its record is whole
		// and fsynced.
		if err := truncateDurable(l.torn.path, l.torn.offset); err != nil {
			return nil, fmt.Errorf("drop the record a crash cut short at the end of %s: %w", l.torn.path, err)
		}
		s.log.Warn("dropped the last log record, cut short by a crash before it was acknowledged", "file", l.torn.path, "offset", l.torn.offset, "reason", l.torn.reason)
	}
	s.work, s.dataExists = l.tree, l.dataExists
	s.snapBytes.Store(l.snapBytes)
	first := &Table{revision: l.revision, tree: s.work.Clone(), changed: make(chan struct{})}
	s.work.Ascend(func(sv Server) bool {
		first.size += int64(EncodedSize(sv.Name, sv.Route()))
		return true
	})
	if l.lineage == "" {
		l.lineage = newLineage()
		if s.dataExists {
			n, err := writeSnapshot(path, l.lineage, first)
			if err != nil {
				return nil, fmt.Errorf("migrate data file %s to the current format: %w", path, err)
			}
			s.snapBytes.Store(n)
			s.log.Info("migrated the data file to the current format (data file + write-ahead log); the table is unchanged", "file", path, "revision", l.revision, "servers", s.work.Len(), "lineage", l.lineage)
		}
	}
	s.lineage.Store(&l.lineage)
	if n := len(l.segments); n > 0 {
		last := l.segments[n-1]
		if last.first > l.revision+1 {
			return nil, fmt.Errorf("log %s starts at revision %d but the data ends at %d: revisions are missing; restore the data from a backup", last.path, last.first, l.revision)
		}
		f, err := openRegular(last.path, os.O_WRONLY|os.O_APPEND, 0, "log segment")
		if err != nil {
			return nil, fmt.Errorf("open log %s: %w", last.path, err)
		}
		st, err := f.Stat()
		if err == nil {
			err = lockSegment(path, f)
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		s.seg, s.segSize = f, st.Size()
	} else if s.dataExists {
		// A segment from the start, so that the data is locked by one even when the
		// lock file is removed before the first write.
		if err := s.newSegment(first.revision + 1); err != nil {
			return nil, err
		}
	}
	if s.lock != nil && s.dataExists {
		if err := s.lock.record(l.lineage, first.revision, true); err != nil {
			return nil, fmt.Errorf("write the lock file %s: %w", lockPath(path), err)
		}
	}
	s.cur.Store(first)
	ok = true
	go s.writer()
	return s, nil
}

// createData writes the data file of an empty table at rev with lineage, and
// records it in the lock file: from here on, the data has existed.
func (s *Embedded) createData(rev uint64, lineage string) error {
	if err := mkdirAllDurable(filepath.Dir(s.path)); err != nil {
		return err
	}
	if s.lock == nil {
		l, err := acquireLock(s.path)
		if err != nil {
			return err
		}
		s.lock = l
	}
	if _, err := os.Lstat(s.path); err == nil {
		return fmt.Errorf("the data file %s was created by another registrar after this one started (was the lock file %s removed?); stop one of them", s.path, lockPath(s.path))
	}
	n, err := writeSnapshot(s.path, lineage, &Table{revision: rev, tree: newTree()})
	if err != nil {
		return err
	}
	s.snapBytes.Store(n)
	s.dataExists = true
	return s.lock.record(lineage, rev, true)
}

// check is what every loaded server must pass: the name and address rules of a
// write, and the extra rules the server gave.
func (s *Embedded) check(sv Server) error {
	if err := validate.ServerName(sv.Name); err != nil {
		return fmt.Errorf("host %q %v", sv.Name, err)
	}
	if err := CheckTargets(sv); err != nil {
		return err
	}
	if err := CheckHealthCheck(sv.HealthCheck); err != nil {
		return err
	}
	if s.extraCheck != nil {
		return s.extraCheck(sv)
	}
	return nil
}

// loaded is the table found on disk.
type loaded struct {
	revision   uint64
	lineage    string
	tree       *btree.BTreeG[Server]
	dataExists bool
	snapBytes  int64
	segments   []segment
	logBytes   int64
	torn       *tornTail
	hist       *history // the changes replayed from the log
	refused    []refusal
}

// refusal is a loaded server the target check left out, and where it was.
type refusal struct {
	server Server
	file   string
	err    error
}

// load reads the data file and replays the log. Servers that fail targetCheck (when
// set) are left out of the table and listed in refused.
func load(path string, check, targetCheck func(Server) error, historyRevs int) (*loaded, error) {
	l := &loaded{tree: newTree()}
	snap, err := readSnapshot(path, check)
	switch {
	case err == nil:
		l.revision, l.lineage, l.tree, l.snapBytes, l.dataExists = snap.revision, snap.lineage, snap.tree, snap.size, true
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, err
	}
	if targetCheck != nil {
		var out []Server
		l.tree.Ascend(func(sv Server) bool {
			if err := targetCheck(sv); err != nil {
				out = append(out, sv)
				l.refused = append(l.refused, refusal{sv, path, err})
			}
			return true
		})
		for _, sv := range out {
			l.tree.Delete(sv)
		}
	}
	if l.segments, err = listSegments(path); err != nil {
		return nil, err
	}
	l.hist = newHistory(l.revision, historyRevs)
	if !l.dataExists && len(l.segments) > 0 {
		return nil, fmt.Errorf("data file %s is missing but its write-ahead log (%s) is there: the data existed and was removed. Restore the data file from a backup; or, to start a new, empty history, move %s.wal-* away and start with -init (REGISTRAR_INIT=1), which does not remove them itself", path, l.segments[0].path, path)
	}
	l.revision, l.logBytes, l.torn, err = replay(l.segments, l.revision, func(r logRecord, file string) error {
		var changes []histEntry
		defer func() { l.hist.add(r.Rev, changes) }()
		for _, op := range r.Ops {
			_, existed := l.tree.Get(Server{Name: op.Name})
			if op.Server != nil && targetCheck != nil && op.Server.Name == op.Name {
				if err := targetCheck(*op.Server); err != nil {
					l.refused = append(l.refused, refusal{*op.Server, file, err})
					op.Server = nil // not served: the name is as if removed
				}
			}
			if op.Server == nil {
				l.tree.Delete(Server{Name: op.Name})
				changes = append(changes, histEntry{rev: r.Rev, name: op.Name, existed: existed})
				continue
			}
			if op.Server.Name != op.Name {
				return fmt.Errorf("op for %q holds server %q", op.Name, op.Server.Name)
			}
			if err := check(*op.Server); err != nil {
				return fmt.Errorf("server %q: %v", op.Name, err)
			}
			l.tree.ReplaceOrInsert(*op.Server)
			changes = append(changes, histEntry{rev: r.Rev, name: op.Name, target: op.Server.Route(), existed: existed})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ReadData reads the data at path (data file and log) without opening a store and
// without repairing anything: its revision and servers by name. A missing data file
// without a log is an empty table at revision 0; a record cut short at the end of the
// log is left out (it was never acknowledged).
func ReadData(path string) (uint64, map[string]Server, error) {
	s := &Embedded{}
	l, err := load(path, s.check, nil, 0)
	if err != nil {
		return 0, nil, err
	}
	servers := make(map[string]Server, l.tree.Len())
	l.tree.Ascend(func(sv Server) bool {
		servers[sv.Name] = sv
		return true
	})
	return l.revision, servers, nil
}

func newLineage() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// Refused is how many servers of the data the target check left out at open.
func (s *Embedded) Refused() int { return s.refused }

// Collectors are the embedded store's own metrics, for the registrar's /metrics.
func (s *Embedded) Collectors() []prometheus.Collector {
	return []prometheus.Collector{prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "registrar_stored_targets_refused",
		Help: "Servers of the data file or log left out at start because the target policy refuses their target (each is logged by name).",
	}, func() float64 { return float64(s.Refused()) })}
}

// Current returns the current table.
func (s *Embedded) Current() *Table { return s.cur.Load() }

// Lineage names this history of the table: 32 hex digits, created with the data and
// kept in the data file.
func (s *Embedded) Lineage() string { return *s.lineage.Load() }

// Write applies changes as one all-or-nothing write and returns once it is durable
// (or has failed, in which case nothing changed).
func (s *Embedded) Write(changes ...Change) WriteResult {
	return s.hand(writeOp{changes: changes})
}

// hand gives op to the writer and waits for its result.
func (s *Embedded) hand(op writeOp) WriteResult {
	op.done = make(chan WriteResult, 1)
	select {
	case s.ops <- op:
	case <-s.quit:
		return WriteResult{Err: ErrClosed}
	}
	return <-op.done
}

// Close finishes writes already handed to the writer and stops it. Later writes
// fail with ErrClosed.
func (s *Embedded) Close() error {
	s.once.Do(func() { close(s.quit) })
	<-s.stopped
	s.closeOnce.Do(s.release)
	return nil
}

// release closes the log and the lock once the writer has stopped.
func (s *Embedded) release() {
	s.compacting.Wait()
	if s.seg != nil {
		s.seg.Close()
		s.seg = nil
	}
	if s.lock != nil {
		if s.dataExists {
			s.lock.record(s.Lineage(), s.cur.Load().revision, true)
		}
		s.lock.release()
		s.lock = nil
	}
}

func (s *Embedded) writer() {
	defer close(s.stopped)
	for {
		var first writeOp
		select {
		case first = <-s.ops:
		case <-s.quit:
			return
		}
		batch := []writeOp{first}
	drain:
		for len(batch) < maxBatch && first.replace == nil {
			select {
			case op := <-s.ops:
				batch = append(batch, op)
				if op.replace != nil {
					break drain // a replacement goes alone, after the writes before it
				}
			default:
				break drain
			}
		}
		if last := batch[len(batch)-1]; last.replace != nil {
			if len(batch) > 1 {
				s.commit(batch[:len(batch)-1])
			}
			last.done <- s.replaceTable(last.replace)
			continue
		}
		s.commit(batch)
	}
}

// commit applies batch in order to a clone of the writer's tree, appends one log
// record per revision and fsyncs once, publishes the result and only then answers
// every write in the batch. When the log cannot be written the clone is dropped:
// nothing changed.
func (s *Embedded) commit(batch []writeOp) {
	start := time.Now()
	cur := s.cur.Load()
	next := s.work.Clone()
	rev := cur.revision
	now := s.now()
	results := make([]WriteResult, len(batch))
	var records []byte
	var encErr error
	type revChanges struct {
		rev     uint64
		changes []histEntry
	}
	var changed []revChanges
	size := cur.size
	for i, op := range batch {
		results[i] = apply(next, op.changes, now, s.maxServers)
		if results[i].Err == nil && results[i].Changed {
			rev++
			ops := logOps(op.changes, results[i])
			records, encErr = appendRecord(records, logRecord{Rev: rev, Ops: ops})
			rc := revChanges{rev: rev}
			for j, c := range op.changes {
				o, n := results[i].Old[j], results[i].New[j]
				switch {
				case n == nil && o != nil:
					size -= int64(EncodedSize(o.Name, o.Route()))
					rc.changes = append(rc.changes, histEntry{rev: rev, name: c.Name, existed: true})
				case n != nil && n != o:
					route := n.Route()
					if o != nil {
						size -= int64(EncodedSize(o.Name, o.Route()))
					}
					size += int64(EncodedSize(n.Name, route))
					rc.changes = append(rc.changes, histEntry{rev: rev, name: c.Name, target: route, existed: o != nil})
				}
			}
			changed = append(changed, rc)
		}
		results[i].Revision = rev
	}
	if rev != cur.revision {
		err := encErr
		if err == nil {
			err = s.appendLog(cur, records)
		}
		if err != nil {
			for i := range results {
				if results[i].Err == nil {
					results[i] = WriteResult{Err: fmt.Errorf("%w: %w", ErrNotSaved, err)}
				}
			}
		} else {
			s.work = next
			t := &Table{revision: rev, tree: next.Clone(), changed: make(chan struct{}), size: size}
			// The history and the current table move together, so a Delta never
			// reaches past Current nor stops short of it.
			s.hist.mu.Lock()
			for _, rc := range changed {
				s.hist.add(rc.rev, rc.changes)
			}
			s.cur.Store(t)
			s.hist.mu.Unlock()
			s.pins.recent(t)
			close(cur.changed)
			// The highest revision reached, for noticing a restored backup at the next
			// start; not fsynced (best effort, see lock.go).
			s.lock.record(s.Lineage(), rev, false)
			if s.onCommit != nil {
				s.onCommit(Commit{Table: t, Writes: len(batch), Took: time.Since(start)})
			}
			s.maybeCompact(t)
		}
	}
	for i, op := range batch {
		op.done <- results[i]
	}
}

// logOps is what a committed write changed, in the order it changed it.
func logOps(changes []Change, out WriteResult) []logOp {
	var ops []logOp
	for i, c := range changes {
		switch {
		case out.New[i] == nil && out.Old[i] != nil:
			ops = append(ops, logOp{Name: c.Name})
		case out.New[i] != nil && out.New[i] != out.Old[i]:
			ops = append(ops, logOp{Name: c.Name, Server: out.New[i]})
		}
	}
	return ops
}

// appendLog makes records durable: on the first commit of a new store it first
// writes the data file (the empty table at revision 0 with the lineage) and the first
// segment; then it appends and fsyncs. A failed append is cut off again so the log
// holds only acknowledged records; when even that fails the store refuses writes
// until it is restarted (the open drops what is left of the record).
func (s *Embedded) appendLog(cur *Table, records []byte) error {
	if s.broken != nil {
		return s.broken
	}
	if !s.dataExists {
		if cur.Len() != 0 {
			return errors.New("no data file but a table that is not empty") // cannot happen: the data file exists once anything was written
		}
		if err := s.createData(cur.revision, s.Lineage()); err != nil {
			return err
		}
	}
	if s.seg == nil {
		if err := s.newSegment(cur.revision + 1); err != nil {
			return err
		}
	}
	_, err := s.seg.Write(records)
	if err == nil {
		err = s.seg.Sync()
	}
	if err != nil {
		if terr := s.seg.Truncate(s.segSize); terr != nil {
			s.broken = fmt.Errorf("the log %s could not be written (%v) nor restored (%v); restart the registrar", s.seg.Name(), err, terr)
		} else if serr := s.seg.Sync(); serr != nil {
			s.broken = fmt.Errorf("the log %s could not be written (%v) nor restored (%v); restart the registrar", s.seg.Name(), err, serr)
		}
		return fmt.Errorf("append to the log %s: %w", s.seg.Name(), err)
	}
	s.segSize += int64(len(records))
	return nil
}

// newSegment starts the log segment whose first record will be revision first, and
// makes its name durable.
func (s *Embedded) newSegment(first uint64) error {
	name := segmentName(s.path, first)
	f, err := openRegular(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600, "log segment")
	if err != nil {
		return fmt.Errorf("create log segment: %w", err)
	}
	if err := lockSegment(s.path, f); err != nil {
		f.Close()
		return err
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		f.Close()
		return err
	}
	if s.seg != nil {
		s.seg.Close()
	}
	s.seg, s.segSize = f, 0
	return nil
}

// maybeCompact starts a compaction when the current segment has grown past the data
// file's size (and compactMin) and none is running: the writer moves on to a new
// segment, and in the background the table t is written to the data file and the
// segments before the new one are removed. A crash at any point leaves a data file
// and segments that load to the same table: records at or below the data file's
// revision are skipped on replay.
func (s *Embedded) maybeCompact(t *Table) {
	if s.segSize < max(s.compactMin, s.snapBytes.Load()) || s.compactOn.Load() {
		return
	}
	if err := s.newSegment(t.revision + 1); err != nil {
		s.log.Error("cannot start a new log segment; compaction postponed", "err", err)
		return
	}
	s.compactOn.Store(true)
	s.compacting.Add(1)
	lineage := s.Lineage()
	go func() {
		defer s.compacting.Done()
		defer s.compactOn.Store(false)
		began := time.Now()
		n, err := writeSnapshot(s.path, lineage, t)
		if err != nil {
			s.log.Error("compaction failed: the data file could not be written; the log keeps every change and compaction is retried later", "err", err)
			return
		}
		s.snapBytes.Store(n)
		s.removeSegmentsThrough(t.revision)
		s.log.Info("compacted the log into the data file", "revision", t.revision, "servers", t.Len(), "bytes", n, "took", time.Since(began).Round(time.Millisecond))
	}()
}

// removeSegmentsThrough removes the log segments that start at or below rev, once
// the data file holds rev: their records are in it.
func (s *Embedded) removeSegmentsThrough(rev uint64) {
	segs, err := listSegments(s.path)
	if err != nil {
		s.log.Error("cannot list log segments to remove the old ones", "err", err)
		return
	}
	for _, sg := range segs {
		if sg.first <= rev {
			if err := os.Remove(sg.path); err != nil {
				s.log.Error("cannot remove an old log segment", "file", sg.path, "err", err)
			}
		}
	}
	syncDir(filepath.Dir(s.path))
}

// Replace makes servers the whole table in one durable write and starts a new
// lineage, so that every proxy takes the table whole (an import, a restore): the data
// file is rewritten at a revision above the current one, and the log starts over
// after it. Every server must pass the rules loaded data passes (the first that does
// not is named) and a name may appear once; then nothing changes. A server without
// updatedAt gets the time of the write.
func (s *Embedded) Replace(servers []Server) WriteResult {
	return s.hand(writeOp{replace: &replaceOp{servers: servers, why: "replaced the whole table: a new history (new lineage); every proxy takes it whole"}})
}

// Fork starts a new lineage with the table as it is, at a revision above the current
// one, so that every proxy takes the table whole. The store hands out a revision only
// once it is durable, so a proxy of its lineage at a higher revision holds another
// history under the same lineage (data restored together with its lock record, as
// from a copy of the whole volume); why says what was seen, for the log.
func (s *Embedded) Fork(why string) WriteResult {
	return s.hand(writeOp{replace: &replaceOp{keep: true, why: why}})
}

// replaceOp is a replacement of the table: by servers, or by the writer's own table
// (keep).
type replaceOp struct {
	servers []Server
	keep    bool
	why     string
}

func (s *Embedded) replaceTable(r *replaceOp) WriteResult {
	if s.broken != nil {
		return WriteResult{Err: fmt.Errorf("%w: %w", ErrNotSaved, s.broken)}
	}
	servers := r.servers
	if r.keep {
		servers = make([]Server, 0, s.work.Len())
		s.work.Ascend(func(sv Server) bool {
			servers = append(servers, sv)
			return true
		})
	}
	start := time.Now()
	tree := newTree()
	var size int64
	now := s.now()
	for _, sv := range servers {
		if err := s.check(sv); err != nil {
			return WriteResult{Err: fmt.Errorf("server %q: %w", sv.Name, err)}
		}
		if sv.UpdatedAt.IsZero() {
			sv.UpdatedAt = now
		}
		if _, dup := tree.ReplaceOrInsert(sv); dup {
			return WriteResult{Err: fmt.Errorf("server %q appears more than once", sv.Name)}
		}
		size += int64(EncodedSize(sv.Name, sv.Route()))
	}
	if s.maxServers > 0 && tree.Len() > s.maxServers {
		return WriteResult{Err: ErrTableFull}
	}
	cur := s.cur.Load()
	old := s.Lineage()
	if !s.dataExists {
		if err := s.createData(cur.revision, old); err != nil {
			return WriteResult{Err: fmt.Errorf("%w: %w", ErrNotSaved, err)}
		}
	}
	// A compaction in flight writes the data file with the old lineage: it must land
	// first. None starts meanwhile: only the writer starts them.
	s.compacting.Wait()
	lineage := newLineage()
	rev := cur.revision + 1
	t := &Table{revision: rev, tree: tree, changed: make(chan struct{}), size: size}
	n, err := writeSnapshot(s.path, lineage, t)
	if err != nil {
		return WriteResult{Err: fmt.Errorf("%w: %w", ErrNotSaved, err)}
	}
	// The data file holds the new table now; every log record is below its revision.
	s.snapBytes.Store(n)
	if err := s.newSegment(rev + 1); err != nil {
		s.log.Error("cannot start a new log segment after replacing the table; the old one goes on", "err", err)
	} else {
		s.removeSegmentsThrough(rev)
	}
	if err := s.lock.record(lineage, rev, true); err != nil {
		s.log.Error("cannot record the new history in the lock file; the next start serves it as another new history", "file", lockPath(s.path), "err", err)
	}
	s.work = tree
	t.tree = tree.Clone()
	s.hist.mu.Lock()
	s.hist.reset(rev)
	s.lineage.Store(&lineage)
	s.cur.Store(t)
	s.hist.mu.Unlock()
	s.pins.recent(t)
	close(cur.changed)
	s.log.Warn(r.why, "old_lineage", old, "new_lineage", lineage, "revision", rev, "servers", t.Len())
	if s.onCommit != nil {
		s.onCommit(Commit{Table: t, Writes: 1, Took: time.Since(start)})
	}
	return WriteResult{Revision: rev, Changed: true}
}

// truncateDurable cuts the file at path to size and fsyncs it.
func truncateDurable(path string, size int64) error {
	f, err := openRegular(path, os.O_WRONLY, 0, "log segment")
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	return f.Sync()
}

// apply performs one write's changes on m, or none of them when one fails: a
// removal with MustExist of an absent name, an Update that refuses, or more than
// maxServers servers after a write that adds some (maxServers 0: no limit).
func apply(m *btree.BTreeG[Server], changes []Change, now time.Time, maxServers int) WriteResult {
	sets, err := resolve(changes, func(name string) *Server {
		if sv, ok := m.Get(Server{Name: name}); ok {
			return &sv
		}
		return nil
	})
	if err != nil {
		return WriteResult{Err: err}
	}
	count := m.Len()
	present := map[string]bool{} // names the write touches, as the write goes on
	for i, c := range changes {
		had, seen := present[c.Name]
		if !seen {
			_, had = m.Get(Server{Name: c.Name})
		}
		switch {
		case sets[i] == nil && had:
			count--
		case sets[i] != nil && !had:
			count++
		}
		present[c.Name] = sets[i] != nil
	}
	if maxServers > 0 && count > maxServers && count > m.Len() {
		return WriteResult{Err: ErrTableFull}
	}
	var out WriteResult
	for i, c := range changes {
		old, had := m.Get(Server{Name: c.Name})
		if had {
			o := old
			out.Old = append(out.Old, &o)
		} else {
			out.Old = append(out.Old, nil)
		}
		if sets[i] == nil {
			out.New = append(out.New, nil)
			if had {
				m.Delete(old)
				out.Changed = true
			}
			continue
		}
		if had && sameContent(old, *sets[i]) {
			out.New = append(out.New, out.Old[len(out.Old)-1])
			continue // same content: keep updatedAt and the revision
		}
		sv := *sets[i]
		sv.Name = c.Name
		sv.UpdatedAt = now
		m.ReplaceOrInsert(sv)
		out.New = append(out.New, &sv)
		out.Changed = true
	}
	return out
}

// resolve gives, per change, the server it sets (nil: a removal), calling Updates in
// order with the server as the write has left it so far (current gives a name's
// server before the write). It fails on a removal with MustExist of an absent name,
// on an Update's error and on a server whose targets break CheckTargets.
func resolve(changes []Change, current func(name string) *Server) ([]*Server, error) {
	sets := make([]*Server, len(changes))
	state := map[string]*Server{}
	for i, c := range changes {
		old, seen := state[c.Name]
		if !seen {
			old = current(c.Name)
		}
		set := c.Server
		if c.Update != nil {
			var err error
			if set, err = c.Update(old); err != nil {
				return nil, err
			}
		}
		if set == nil && c.MustExist && old == nil {
			return nil, ErrNotFound
		}
		if set != nil {
			// What a write stores must load again: the rules the loader applies.
			if err := CheckTargets(*set); err != nil {
				return nil, fmt.Errorf("server %q: %v", c.Name, err)
			}
		}
		sets[i], state[c.Name] = set, set
	}
	return sets, nil
}

// Resolve is resolve for stores outside this package.
func Resolve(changes []Change, current func(name string) *Server) ([]*Server, error) {
	return resolve(changes, current)
}

// Delta returns the compacted changes after revision after from the retained
// history (see WithHistory), or ok false when they are not all held or do not fit
// in maxBytes.
func (s *Embedded) Delta(after uint64, maxBytes int) (Delta, bool) {
	s.hist.mu.RLock()
	defer s.hist.mu.RUnlock()
	return s.hist.delta(after, maxBytes)
}

// Page serves a page of the table at rev: from a table pinned by an earlier page,
// or one of the last few published (which it then pins).
func (s *Embedded) Page(rev uint64, start string, maxBytes int) (Page, error) {
	t := s.pins.get(rev, s.cur.Load())
	if t == nil {
		return Page{}, ErrSnapshotGone
	}
	return pageOf(t, start, maxBytes), nil
}

// pageOf cuts one page from t.
func pageOf(t *Table, start string, maxBytes int) Page {
	p := Page{Revision: t.revision}
	size := 0
	t.Ascend(start, func(sv Server) bool {
		route := sv.Route()
		n := EncodedSize(sv.Name, route)
		if len(p.Routes) > 0 && size+n > maxBytes {
			p.Next = sv.Name
			return false
		}
		size += n
		p.Routes = append(p.Routes, Route{sv.Name, route})
		return true
	})
	return p
}

// pins keeps the tables pages were served from, each until SnapshotKeep after its
// last page request, and the last few published tables (a first page asked for just
// as a write lands still finds its revision). A pinned table costs only the nodes
// later writes copied.
type pins struct {
	mu     sync.Mutex
	tables map[uint64]*pin
	last   [8]*Table
	next   int
	now    func() time.Time
}

// recent records a newly published table.
func (p *pins) recent(t *Table) {
	p.mu.Lock()
	p.last[p.next%len(p.last)] = t
	p.next++
	p.mu.Unlock()
}

type pin struct {
	table    *Table
	lastUsed time.Time
}

// get returns the table at rev, pinning cur when it is at rev, or nil.
func (p *pins) get(rev uint64, cur *Table) *Table {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.now != nil {
		now = p.now()
	}
	for r, pn := range p.tables {
		if now.Sub(pn.lastUsed) > SnapshotKeep {
			delete(p.tables, r)
		}
	}
	if pn, ok := p.tables[rev]; ok {
		pn.lastUsed = now
		return pn.table
	}
	if cur.revision != rev {
		cur = nil
		for _, t := range p.last {
			if t != nil && t.revision == rev {
				cur = t
			}
		}
		if cur == nil {
			return nil
		}
	}
	if p.tables == nil {
		p.tables = map[uint64]*pin{}
	}
	p.tables[rev] = &pin{table: cur, lastUsed: now}
	return cur
}
