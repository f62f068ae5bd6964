package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/btree"

	"switchyard/internal/validate"
)

// dataFile is the on-disk form. The revision is kept in the file so that it only
// grows, across restarts too.
type dataFile struct {
	Revision uint64   `json:"revision"`
	Servers  []Server `json:"servers"`
}

// Commit describes one durable commit, for an observer (metrics).
type Commit struct {
	Table  *Table        // the table the commit made current
	Writes int           // writes carried by the commit (group commit)
	Took   time.Duration // applying and making the batch durable
}

// Option configures an Embedded store.
type Option func(*Embedded)

// OnCommit registers fn, called by the writer after each published commit. It is
// set before the writer starts, so it sees every commit.
func OnCommit(fn func(Commit)) Option { return func(s *Embedded) { s.onCommit = fn } }

// WithLogger sets where the store reports what it did at open (stale files removed).
func WithLogger(l *slog.Logger) Option { return func(s *Embedded) { s.log = l } }

// withClock sets the clock that stamps updatedAt (tests).
func withClock(now func() time.Time) Option { return func(s *Embedded) { s.now = now } }

type writeOp struct {
	changes []Change
	done    chan Outcome
}

// Embedded is the Store kept in a local data file. Reads are lock-free Tables; writes
// go through one writer goroutine that batches whatever writes are waiting into a
// single durable commit (group commit) and acknowledges each write only after the
// data holding it is durable.
type Embedded struct {
	path     string
	cur      atomic.Pointer[Table]
	work     *btree.BTreeG[Server] // the writer's tree; only the writer touches it
	ops      chan writeOp
	quit     chan struct{}
	stopped  chan struct{}
	once     sync.Once
	now      func() time.Time
	log      *slog.Logger
	onCommit func(Commit)
	pins     pins
}

var _ Store = (*Embedded)(nil)

// maxBatch bounds how many waiting writes go into one commit.
const maxBatch = 1024

// Open loads the data file at path (a missing file is an empty table at revision 0)
// after removing temporary files a crash left behind, and starts the writer.
func Open(path string, opts ...Option) (*Embedded, error) {
	s := &Embedded{
		path:    path,
		ops:     make(chan writeOp),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
		now:     func() time.Time { return time.Now().UTC() },
		log:     slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(s)
	}
	removed, err := cleanStaleTemps(path)
	for _, f := range removed {
		s.log.Info("removed a stale temporary file left by an interrupted write", "file", f)
	}
	if err != nil {
		return nil, err
	}
	rev, servers, err := ReadData(path)
	if err != nil {
		return nil, err
	}
	s.work = newTree()
	for _, sv := range servers {
		s.work.ReplaceOrInsert(sv)
	}
	s.cur.Store(&Table{revision: rev, tree: s.work.Clone(), changed: make(chan struct{})})
	go s.writer()
	return s, nil
}

// ReadData reads the data at path without opening a store: its revision and servers
// by name. A missing file is an empty table at revision 0. Every entry is checked
// the way a write is; the first bad one is named.
func ReadData(path string) (uint64, map[string]Server, error) {
	servers := map[string]Server{}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, servers, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("read data file %s: %w", path, err)
	}
	var f dataFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return 0, nil, fmt.Errorf("data file %s is not valid registrar data (%v); restore it from a backup or move it away to start empty", path, err)
	}
	for i, sv := range f.Servers {
		if err := validate.ServerName(sv.Host); err != nil {
			return 0, nil, fmt.Errorf("data file %s: server %d: host %q %v; fix or remove the entry", path, i, sv.Host, err)
		}
		if _, err := validate.ParseAddress(sv.IPAddress); err != nil {
			return 0, nil, fmt.Errorf("data file %s: server %q: ipAddress: %v; fix or remove the entry", path, sv.Host, err)
		}
		if _, dup := servers[sv.Host]; dup {
			return 0, nil, fmt.Errorf("data file %s: server %q appears twice; remove one entry", path, sv.Host)
		}
		servers[sv.Host] = sv
	}
	return f.Revision, servers, nil
}

// Current returns the current table.
func (s *Embedded) Current() *Table { return s.cur.Load() }

// Lineage names this history of the table.
func (s *Embedded) Lineage() string { return "" }

// Write applies changes as one all-or-nothing write and returns once it is durable
// (or has failed, in which case nothing changed).
func (s *Embedded) Write(changes ...Change) Outcome {
	op := writeOp{changes: changes, done: make(chan Outcome, 1)}
	select {
	case s.ops <- op:
	case <-s.quit:
		return Outcome{Err: ErrClosed}
	}
	return <-op.done
}

// Close finishes writes already handed to the writer and stops it. Later writes
// fail with ErrClosed.
func (s *Embedded) Close() error {
	s.once.Do(func() { close(s.quit) })
	<-s.stopped
	return nil
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
		for len(batch) < maxBatch {
			select {
			case op := <-s.ops:
				batch = append(batch, op)
			default:
				break drain
			}
		}
		s.commit(batch)
	}
}

// commit applies batch in order to a clone of the writer's tree, makes the result
// durable once, publishes it and only then answers every write in the batch. When
// the data cannot be made durable the clone is dropped: nothing changed.
func (s *Embedded) commit(batch []writeOp) {
	start := time.Now()
	cur := s.cur.Load()
	next := s.work.Clone()
	rev := cur.revision
	now := s.now()
	results := make([]Outcome, len(batch))
	for i, op := range batch {
		results[i] = apply(next, op.changes, now)
		if results[i].Err == nil && results[i].Changed {
			rev++
		}
		results[i].Revision = rev
	}
	if rev != cur.revision {
		if err := s.persist(rev, next); err != nil {
			for i := range results {
				if results[i].Err == nil {
					results[i] = Outcome{Err: fmt.Errorf("%w: %v", ErrNotSaved, err)}
				}
			}
		} else {
			s.work = next
			t := &Table{revision: rev, tree: next.Clone(), changed: make(chan struct{})}
			s.cur.Store(t)
			close(cur.changed)
			if s.onCommit != nil {
				s.onCommit(Commit{Table: t, Writes: len(batch), Took: time.Since(start)})
			}
		}
	}
	for i, op := range batch {
		op.done <- results[i]
	}
}

// apply performs one write's changes on m, or none of them when one fails.
func apply(m *btree.BTreeG[Server], changes []Change, now time.Time) Outcome {
	var out Outcome
	for _, c := range changes {
		if c.Server == nil && c.MustExist {
			if _, ok := m.Get(Server{Host: c.Host}); !ok {
				return Outcome{Err: ErrNotFound}
			}
		}
	}
	for _, c := range changes {
		old, had := m.Get(Server{Host: c.Host})
		if had {
			o := old
			out.Old = append(out.Old, &o)
		} else {
			out.Old = append(out.Old, nil)
		}
		if c.Server == nil {
			out.New = append(out.New, nil)
			if had {
				m.Delete(old)
				out.Changed = true
			}
			continue
		}
		if had && old.IPAddress == c.Server.IPAddress && old.ServiceName == c.Server.ServiceName {
			out.New = append(out.New, out.Old[len(out.Old)-1])
			continue // same content: keep updatedAt and the revision
		}
		sv := *c.Server
		sv.Host = c.Host
		sv.UpdatedAt = now
		m.ReplaceOrInsert(sv)
		out.New = append(out.New, &sv)
		out.Changed = true
	}
	return out
}

func (s *Embedded) persist(rev uint64, servers *btree.BTreeG[Server]) error {
	f := dataFile{Revision: rev, Servers: make([]Server, 0, servers.Len())}
	servers.Ascend(func(sv Server) bool {
		f.Servers = append(f.Servers, sv)
		return true
	})
	body, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return replaceFile(s.path, append(body, '\n'))
}

// Delta: this store keeps no history yet; every caller gets the full table.
func (s *Embedded) Delta(after uint64, maxBytes int) (Delta, bool) { return Delta{}, false }

// Page serves a page of the table at rev from the tables pinned by earlier pages, or
// pins the current table when rev is current.
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
		n := EncodedSize(sv.Host, sv.IPAddress)
		if len(p.Routes) > 0 && size+n > maxBytes {
			p.Next = sv.Host
			return false
		}
		size += n
		p.Routes = append(p.Routes, Route{sv.Host, sv.IPAddress})
		return true
	})
	return p
}

// pins keeps the tables pages were served from, each until SnapshotKeep after its
// last page request. A pinned table costs only the nodes later writes copied.
type pins struct {
	mu     sync.Mutex
	tables map[uint64]*pin
	now    func() time.Time
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
		return nil
	}
	if p.tables == nil {
		p.tables = map[uint64]*pin{}
	}
	p.tables[rev] = &pin{table: cur, lastUsed: now}
	return cur
}
