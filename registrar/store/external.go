package store

import "errors"

// What a Store kept outside this package (etcdstore) needs to build the same Tables,
// pages and errors as Embedded.

// ErrUnavailable: the store's backend (etcd) could not confirm the write; the
// registrar answers 503 and the client retries. Errors wrapping it say what to do.
var ErrUnavailable = errors.New("the store is unavailable")

// NewTable returns a table at rev holding servers (by Name; a later duplicate wins).
func NewTable(rev uint64, servers []Server) *Table {
	tree := newTree()
	var size int64
	for _, sv := range servers {
		if old, had := tree.ReplaceOrInsert(sv); had {
			size -= int64(EncodedSize(old.Name, old.Route()))
		}
		size += int64(EncodedSize(sv.Name, sv.Route()))
	}
	return &Table{revision: rev, tree: tree, changed: make(chan struct{}), size: size}
}

// Next returns the table at rev that is t with upserts set and removals deleted. It
// shares t's unchanged nodes (copy on write); t itself is not changed, and its Changed
// is not closed (see Supersede). Calls of Next on one table must not run at once.
func (t *Table) Next(rev uint64, upserts []Server, removals []string) *Table {
	tree := t.tree.Clone()
	size := t.size
	for _, sv := range upserts {
		if old, had := tree.ReplaceOrInsert(sv); had {
			size -= int64(EncodedSize(old.Name, old.Route()))
		}
		size += int64(EncodedSize(sv.Name, sv.Route()))
	}
	for _, h := range removals {
		if old, had := tree.Delete(Server{Name: h}); had {
			size -= int64(EncodedSize(old.Name, old.Route()))
		}
	}
	return &Table{revision: rev, tree: tree, changed: make(chan struct{}), size: size}
}

// Supersede closes t's Changed, waking its waiters: call it once, after the table
// that replaces t is current.
func (t *Table) Supersede() { close(t.changed) }

// PageOf cuts the page of t that starts at name start, as Embedded.Page does.
func PageOf(t *Table, start string, maxBytes int) Page { return pageOf(t, start, maxBytes) }

// Pins keeps the tables pages were served from, each until SnapshotKeep after its
// last page request, as Embedded does. The zero value is ready to use.
type Pins struct{ p pins }

// Get returns the table at rev, pinning cur when it is at rev, or nil when rev is
// neither pinned nor current.
func (p *Pins) Get(rev uint64, cur *Table) *Table { return p.p.get(rev, cur) }
