package store

import (
	"github.com/google/btree"
)

// Table is an immutable view of the table at one revision. Reading it never blocks
// and never sees a later write: it is a copy-on-write clone of the writer's B-tree
// (github.com/google/btree), so taking one costs O(1) and a write after it copies
// only the O(log n) nodes it touches.
type Table struct {
	revision uint64
	tree     *btree.BTreeG[Server] // never modified once the Table is published
	changed  chan struct{}         // closed when a newer Table is current
	size     int64                 // sum of EncodedSize over the routes
}

// btreeDegree: nodes of up to 63 servers keep the tree shallow (3 levels at 100,000
// names) while a write copies little (a few nodes of 63 entries).
const btreeDegree = 32

func byName(a, b Server) bool { return a.Name < b.Name }

func newTree() *btree.BTreeG[Server] { return btree.NewG(btreeDegree, byName) }

// Revision is the revision this table is at.
func (t *Table) Revision() uint64 { return t.revision }

// Len is the number of servers in the table.
func (t *Table) Len() int { return t.tree.Len() }

// Get returns the server registered under the server name.
func (t *Table) Get(name string) (Server, bool) { return t.tree.Get(Server{Name: name}) }

// Ascend calls fn for each server with a name >= start, in byte order of the name,
// until fn returns false.
func (t *Table) Ascend(start string, fn func(Server) bool) {
	t.tree.AscendGreaterOrEqual(Server{Name: start}, fn)
}

// RoutesSize is the size of the table's routes as members of a JSON object (the sum
// of EncodedSize over them), kept up to date by the writer, so that an answer's size
// is known before it is encoded.
func (t *Table) RoutesSize() int64 { return t.size }

// Changed is closed once a newer table is current.
func (t *Table) Changed() <-chan struct{} { return t.changed }
