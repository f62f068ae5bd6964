// Package store is the registrar's table of servers and the seam between the HTTP
// server and where the table is kept: the Store interface says what the server needs,
// Embedded keeps the table in a local data file and its write-ahead log (the
// default; its doc says why that design, with the measurements), and other
// implementations (etcd) keep it elsewhere with the same promises. Table is the
// immutable view of one revision every implementation hands out.
package store

import (
	"errors"
	"log/slog"
	"time"
)

// Server is one registered server: the server name clients put in X-Server-Name
// (Name) and the targets the proxy sends them to (targets.go). Target (ipAddress) is
// the first active target, what clients and data from before target sets know;
// Targets is nil for a server of that one active target of weight 1 (see NewServer).
// HealthCheck, when set, is the registrar's active health check of the targets
// (health.go). The JSON names are the data file's and etcd's format; the API answers
// with internal/registrarapi's Server, which shows targets with their health instead.
type Server struct {
	Name        string       `json:"host"`
	Target      string       `json:"ipAddress"`
	Targets     []Target     `json:"targets,omitempty"`
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
	Service     string       `json:"serviceName"`
	UpdatedAt   time.Time    `json:"updatedAt"`
}

// Change sets (Server != nil, or Update) or removes (neither) one server name.
type Change struct {
	Name   string
	Server *Server
	// Update, when set, computes the server to set from the one the write finds
	// registered (nil when none) as one step with the write, so that changing one
	// target cannot lose another write made meanwhile. It must not modify old (its
	// Targets are shared with the table). An error fails the whole write, unchanged
	// (WriteResult.Err). A store may call it more than once (etcd retries).
	Update func(old *Server) (*Server, error)
	// MustExist makes a removal of an absent name fail with ErrNotFound.
	MustExist bool
}

// WriteResult is what a committed write reports back.
type WriteResult struct {
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

// Route is one entry of the table as the proxies see it: a server name and its
// target-set string (Server.Route).
type Route struct {
	Name   string
	Target string
}

// Page is one page of the full table at one revision.
type Page struct {
	Revision uint64
	// Routes are in byte order of the name.
	Routes []Route
	// Next is the name the next page starts at; empty on the last page.
	Next string
}

// Delta is the change of the table from revision From to revision Revision,
// compacted: a name appears at most once, in Upserts (its state at Revision) or in
// Removals (absent at Revision but present at From).
type Delta struct {
	From, Revision uint64
	Upserts        []Route
	Removals       []string
}

var (
	// ErrNotFound: a removal with MustExist of a name that is not registered.
	ErrNotFound = errors.New("not registered")
	// ErrNotSaved: the write could not be made durable; nothing was changed.
	ErrNotSaved = errors.New("could not save the data, nothing was changed")
	// ErrClosed: the store is closed (the registrar is shutting down).
	ErrClosed = errors.New("the registrar is shutting down; retry against the new instance")
	// ErrTableFull: the write would take the table past its maximum of servers.
	ErrTableFull = errors.New("the table is full")
	// ErrTooLarge: the store cannot make the write as one (the etcd store: more than
	// one etcd transaction may hold); nothing was changed, and it may be made in parts.
	ErrTooLarge = errors.New("the write is too large to make at once")
	// ErrSnapshotGone: Page was asked for a revision the store no longer holds.
	ErrSnapshotGone = errors.New("snapshot_gone")
)

// SnapshotKeep is how long a store keeps a revision it has served a page of, counted
// from the last page request of that revision.
const SnapshotKeep = 60 * time.Second

// Store is what the registrar's HTTP server needs of the place the table is kept.
// Every implementation promises:
//
//   - Revisions are the store's own (an embedded store counts its commits; an etcd
//     store uses etcd's revision). They only grow, across restarts too, within one
//     lineage; a write that changes nothing does not move it.
//   - Current returns the table at the current revision without blocking, never nil.
//     The Table is immutable; its Changed channel is closed once a newer table is
//     current, so any number of waiters wake with one close.
//   - Write applies its changes as one all-or-nothing write and returns only after
//     the write is durable (or failed, and then nothing changed). Writes handed to
//     Write concurrently may be committed together (group commit) but each gets its
//     own revision when it changes something. After Write returns, Current is at the
//     write's revision or later.
//   - Page returns, from the table exactly as it was at revision rev, the routes with
//     names >= start in byte order, as many as fit in maxBytes by EncodedSize (at
//     least one). rev must be a revision the store handed out as current: the store
//     keeps it readable for at least SnapshotKeep after the last Page call for it, and
//     answers ErrSnapshotGone once it cannot.
//   - Delta returns the compacted change from revision after to the current revision
//     when the store still holds every change in between and the delta's routes fit
//     in maxBytes (by EncodedSize); ok is false otherwise ("not held"), and the
//     caller serves the full table instead. after must be below the current revision.
//   - Replace makes servers the whole table as one all-or-nothing, durable write
//     that starts a new lineage (an import), at a revision above the current one, so
//     that every proxy takes the table whole. A name may appear once; a server
//     without UpdatedAt gets the time of the write.
//   - Lineage names this history of the table; it changes whenever the history is
//     replaced (a new data store, a restored backup, Replace).
//   - Close finishes writes in flight and releases the store; later writes fail with
//     ErrClosed. Reads of tables already obtained keep working.
type Store interface {
	Current() *Table
	Write(changes ...Change) WriteResult
	Replace(servers []Server) WriteResult
	Page(rev uint64, start string, maxBytes int) (Page, error)
	Delta(after uint64, maxBytes int) (d Delta, ok bool)
	Lineage() string
	Close() error
}

// Forker is a store that hands out a revision only once it holds it for good (the
// embedded store), so that a client of its lineage at a higher revision holds another
// history under the same lineage. Fork starts a new lineage with the current table,
// at a revision above the current one, so that such a client takes the table whole
// instead of waiting for a revision that would not be the one it holds; why is logged.
type Forker interface {
	Fork(why string) WriteResult
}

// EncodedSize is the size a route takes in a JSON object of routes: "name":"target",
// (names and targets are validated, so nothing in them needs escaping). Sizes are
// counted with the target-set string, which is never shorter than the plain address
// versions 1 and 2 send, so a page cut for version 3 also fits for them.
func EncodedSize(name, target string) int { return len(name) + len(target) + 6 }

// Options are the settings both stores take: Open (with EmbeddedOptions) and
// etcdstore.Open (with etcdstore.Options) embed them.
type Options struct {
	// Log is where the store reports what it did (at open, compactions, invalid
	// entries); nil: each store's default.
	Log *slog.Logger
	// OnCommit, when set, is called after each commit the store made durable (the
	// embedded store's writer; etcd: each transaction etcd committed), so it sees
	// every commit.
	OnCommit func(Commit)
	// EntryCheck adds the rules every loaded server must pass besides a valid name and
	// address (the server's write rules). The embedded store refuses to open with an
	// entry that fails; the etcd store skips it like any invalid key.
	EntryCheck func(Server) error
	// TargetCheck is the target policy. A loaded server whose target it refuses
	// reached the data another way than a checked write (a file edited, a key written
	// into etcd directly, the policy narrowed since): it is not served but logged and
	// counted, and the store goes on. The embedded store leaves it out at open (its
	// next compaction drops it from the data file); the etcd store skips it like any
	// invalid key.
	TargetCheck func(Server) error
	// History is how many revisions of changes are kept for Delta (at most that many
	// name changes in all); 0: DefaultHistory.
	History int
	// MaxServers makes writes that would take the table past it fail with
	// ErrTableFull; 0: no limit.
	MaxServers int
}
