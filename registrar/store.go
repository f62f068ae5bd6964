package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"switchyard/internal/validate"
)

// Server is one registered server: the name clients put in X-Server-Name and the
// target the proxy sends them to.
type Server struct {
	Host        string    `json:"host"`
	IPAddress   string    `json:"ipAddress"`
	ServiceName string    `json:"serviceName"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// dataFile is the on-disk form. The revision is kept in the file so that it only
// grows, across restarts too.
type dataFile struct {
	Revision uint64   `json:"revision"`
	Servers  []Server `json:"servers"`
}

// snapshot is an immutable view of the table at one revision. changed is closed
// when a newer snapshot replaces it, which is how long-polls wait without polling.
type snapshot struct {
	revision uint64
	servers  map[string]Server
	sorted   []Server // by host
	routes   []byte   // the /v1/routes body, encoded once per revision
	changed  chan struct{}
}

func newSnapshot(rev uint64, servers map[string]Server) (*snapshot, error) {
	s := &snapshot{revision: rev, servers: servers, changed: make(chan struct{})}
	routes := make(map[string]string, len(servers))
	for _, v := range servers {
		s.sorted = append(s.sorted, v)
		routes[v.Host] = v.IPAddress
	}
	slices.SortFunc(s.sorted, func(a, b Server) int { return strings.Compare(a.Host, b.Host) })
	body, err := json.Marshal(struct {
		Revision uint64            `json:"revision"`
		Routes   map[string]string `json:"routes"`
	}{rev, routes})
	if err != nil {
		return nil, err
	}
	s.routes = append(body, '\n')
	return s, nil
}

// change sets (Server != nil) or removes (Server == nil) one host.
type change struct {
	Host   string
	Server *Server
	// MustExist makes a removal of an absent host fail with errNotFound.
	MustExist bool
}

// outcome is what a committed write reports back.
type outcome struct {
	// Revision is the revision at which the write's effect is visible (the current
	// one for a write that changed nothing).
	Revision uint64
	// Changed says whether any change in the write altered the table.
	Changed bool
	// Old holds, per change, the server it replaced or removed (nil when none).
	Old []*Server
	// New holds, per change, the server as it now stands (nil after a removal).
	New []*Server
	Err error
}

var (
	errNotFound = errors.New("not registered")
	errNotSaved = errors.New("could not save the data file, nothing was changed")
	errClosed   = errors.New("the registrar is shutting down; retry against the new instance")
)

type writeOp struct {
	changes []change
	done    chan outcome
}

// Store is the durable table of servers. Reads are lock-free snapshots; writes go
// through one writer goroutine that batches whatever writes are waiting into a single
// durable file replacement (group commit) and acknowledges each write only after the
// file holding it is durable.
type Store struct {
	path    string
	snap    atomic.Pointer[snapshot]
	ops     chan writeOp
	quit    chan struct{}
	stopped chan struct{}
	once    sync.Once
	now     func() time.Time
	// onCommit, when set, is called by the writer after each published commit.
	onCommit func(s *snapshot, batch int, took time.Duration)
}

// maxBatch bounds how many waiting writes go into one file replacement.
const maxBatch = 1024

// OpenStore loads path (a missing file is an empty table at revision 0) after
// removing temporary files a crash left behind, and starts the writer.
func OpenStore(path string) (*Store, []string, error) {
	removed, err := cleanStaleTemps(path)
	if err != nil {
		return nil, removed, err
	}
	rev, servers, err := loadDataFile(path)
	if err != nil {
		return nil, removed, err
	}
	first, err := newSnapshot(rev, servers)
	if err != nil {
		return nil, removed, err
	}
	s := &Store{
		path:    path,
		ops:     make(chan writeOp),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
		now:     func() time.Time { return time.Now().UTC() },
	}
	s.snap.Store(first)
	go s.writer()
	return s, removed, nil
}

func loadDataFile(path string) (uint64, map[string]Server, error) {
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

// Snapshot returns the current table.
func (s *Store) Snapshot() *snapshot { return s.snap.Load() }

// Write applies changes as one all-or-nothing write and returns once it is durable
// (or has failed, in which case nothing changed).
func (s *Store) Write(changes ...change) outcome {
	op := writeOp{changes: changes, done: make(chan outcome, 1)}
	select {
	case s.ops <- op:
	case <-s.quit:
		return outcome{Err: errClosed}
	}
	return <-op.done
}

// Close finishes writes already handed to the writer and stops it. Later writes
// fail with errClosed.
func (s *Store) Close() {
	s.once.Do(func() { close(s.quit) })
	<-s.stopped
}

func (s *Store) writer() {
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

// commit applies batch in order to a copy of the table, makes the result durable
// once, publishes it and only then answers every write in the batch.
func (s *Store) commit(batch []writeOp) {
	start := time.Now()
	cur := s.snap.Load()
	next := make(map[string]Server, len(cur.servers)+len(batch))
	for k, v := range cur.servers {
		next[k] = v
	}
	rev := cur.revision
	now := s.now()
	results := make([]outcome, len(batch))
	for i, op := range batch {
		results[i] = apply(next, op.changes, now)
		if results[i].Err == nil && results[i].Changed {
			rev++
		}
		results[i].Revision = rev
	}
	if rev != cur.revision {
		err := s.persist(rev, next)
		var snap *snapshot
		if err == nil {
			snap, err = newSnapshot(rev, next)
		}
		if err != nil {
			for i := range results {
				if results[i].Err == nil {
					results[i] = outcome{Err: fmt.Errorf("%w: %v", errNotSaved, err)}
				}
			}
		} else {
			s.snap.Store(snap)
			close(cur.changed)
			if s.onCommit != nil {
				s.onCommit(snap, len(batch), time.Since(start))
			}
		}
	}
	for i, op := range batch {
		op.done <- results[i]
	}
}

// apply performs one write's changes on m, or none of them when one fails.
func apply(m map[string]Server, changes []change, now time.Time) outcome {
	var out outcome
	for _, c := range changes {
		if c.Server == nil {
			if _, ok := m[c.Host]; !ok && c.MustExist {
				return outcome{Err: errNotFound}
			}
		}
	}
	for _, c := range changes {
		old, had := m[c.Host]
		if had {
			o := old
			out.Old = append(out.Old, &o)
		} else {
			out.Old = append(out.Old, nil)
		}
		if c.Server == nil {
			out.New = append(out.New, nil)
			if had {
				delete(m, c.Host)
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
		m[c.Host] = sv
		out.New = append(out.New, &sv)
		out.Changed = true
	}
	return out
}

func (s *Store) persist(rev uint64, servers map[string]Server) error {
	f := dataFile{Revision: rev, Servers: make([]Server, 0, len(servers))}
	for _, v := range servers {
		f.Servers = append(f.Servers, v)
	}
	slices.SortFunc(f.Servers, func(a, b Server) int { return strings.Compare(a.Host, b.Host) })
	body, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return replaceFile(s.path, append(body, '\n'))
}
