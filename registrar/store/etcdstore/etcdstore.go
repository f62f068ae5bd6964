// Package etcdstore keeps the registrar's table of servers in etcd, so that several
// registrar replicas share one table that survives the loss of a machine.
//
// What is stored where, under the prefix P (-etcd-prefix, default /switchyard/servers/):
//
//   - P + NAME: one key per server, its value the server as JSON
//     ({"host","ipAddress","serviceName","updatedAt"}, and "targets" for a server that
//     is not one active target of weight 1, as in the data file), NAME equal to "host";
//   - P + "@lineage": created once (random hex) by the first registrar that finds it
//     missing; with etcd's cluster id it makes the table's lineage;
//   - P + "@last-write": put in the same transaction as every write the registrar
//     makes, so that a fresh read of the prefix knows the revision of the last change,
//     deletions included (the largest mod revision under P).
//   - P + "@health-checker/" + LEASE: the candidates of the election of the replica
//     that runs the active health checks (election.go); not part of the table, and
//     their changes never move its revision.
//
// Promises:
//
//   - A write is acknowledged once etcd has committed it (a transaction that compares
//     the mod revision of every key it changes, retried when another replica got there
//     first), and once this replica's table shows it, so a read after a write through
//     the same replica sees it. A write that changes nothing writes nothing and does
//     not move the revision, as in the embedded store.
//   - The table's revision is etcd's revision of the last change under P, the same on
//     every replica for the same table.
//   - One watch per replica follows P and feeds the in-memory table; long-polls wake
//     from it. A watch that is cancelled, times out or loses its leader is opened
//     again from the last revision it delivered: the revision never advances without
//     the events that made it.
//   - A compacted start revision, a revision that went backwards (etcd restored) or a
//     changed @lineage mean a fresh full read of P, paged at one pinned revision:
//     never skipped events.
//   - A key under P that is not a valid server is skipped with a log line naming it
//     and counted (InvalidKeys); it is never served and never fatal.
//   - When etcd cannot be reached, reads keep serving the last table and writes fail
//     with an error naming etcd (store.ErrUnavailable: the registrar answers 503);
//     the watch resumes when it returns.
//   - Deltas come from the changes this replica's watch delivered since its last full
//     read (at most Options.History of them); a proxy asking from before that gets the
//     full table. Pages are cut from this replica's copy of the table at the revision
//     asked for, pinned as in the embedded store.
//   - The lineage is a hash of etcd's cluster id and the @lineage key; a replica that
//     sees etcd's revision go behind the one it applied replaces @lineage (once, by
//     compare-and-swap), so every replica changes lineage with it.
//
// Where it differs from the embedded store, because etcd works so: a write is one
// etcd transaction, limited by etcd's --max-txn-ops (default 128 operations) and
// --max-request-bytes (1.5 MiB), so a larger -import is refused with an error saying
// so; writes are not grouped by the store (etcd batches them itself); and "Current
// is at the write's revision after Write returns" holds unless this replica's watch
// lags by more than the request timeout (the write is committed either way).
package etcdstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"switchyard/internal/validate"
	"switchyard/registrar/store"
)

// Meta keys under the prefix. "@" cannot start a server name, so they never collide.
const (
	lineageKey   = "@lineage"
	lastWriteKey = "@last-write"
)

// Options says how to reach etcd and where the table lives, besides the settings
// both stores share (store.Options; Log defaults to slog.Default, History to
// 100,000).
type Options struct {
	store.Options
	Endpoints   []string
	Prefix      string        // default DefaultPrefix
	CACert      string        // PEM file of the CA that signed etcd's certificate (https endpoints)
	Cert, Key   string        // client certificate and key (etcd's --client-cert-auth)
	Username    string        // etcd auth
	Password    string        //
	DialTimeout time.Duration // default 5 s; also bounds each request to etcd
	// ElectionTTL is the lease of this replica's candidacy in the election of the
	// replica that runs the active health checks (Lead): when the leading replica
	// dies, another leads within it. Default DefaultElectionTTL; whole seconds.
	ElectionTTL time.Duration
}

// DefaultElectionTTL is the election lease unless Options.ElectionTTL says otherwise.
const DefaultElectionTTL = 5 * time.Second

// DefaultPrefix is where the table lives unless -etcd-prefix says otherwise.
const DefaultPrefix = "/switchyard/servers/"

// view is what one published table comes with: the etcd revision it is current at
// (applied: at or past the table's revision, the last change under the prefix) and
// the lineage.
type view struct {
	table   *store.Table
	applied int64
	lineage string
}

// event is one change of the table as the watch delivered it (server nil: removed),
// with whether the name was in the table just before.
type event struct {
	rev    uint64
	name   string
	server *store.Server
	had    bool
}

// Store is the table kept in etcd, followed by one watch. It implements store.Store.
type Store struct {
	cli        *clientv3.Client
	prefix     string
	timeout    time.Duration
	log        *slog.Logger
	onCommit   func(store.Commit)
	check      func(store.Server) error
	target     func(store.Server) error // the target policy (Options.TargetCheck)
	historyMax int
	maxSrv     int
	// electionTTL is Options.ElectionTTL (election.go).
	electionTTL time.Duration

	cur        atomic.Pointer[view]
	reachable  atomic.Bool
	restoredAt atomic.Int64 // etcd's revision when seen behind the one applied (restored); 0: not
	invalid    atomic.Int64 // keys under the prefix currently skipped
	fullReads  atomic.Int64
	closed     atomic.Bool
	pins       store.Pins

	mu      sync.Mutex // held by the one goroutine publishing; guards what follows
	badSeen map[string]int64
	// history holds the changes since base (a full read), oldest first, for Delta.
	history []event
	base    uint64

	resync chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

var _ store.Store = (*Store)(nil)

// Open connects to etcd, reads the whole table (creating the lineage key when it is
// missing) and starts following it. It fails when etcd cannot be reached within the
// dial timeout: a replica that never saw the table has nothing to serve.
func Open(ctx context.Context, o Options) (*Store, error) {
	s, err := open(ctx, o)
	if err != nil {
		return nil, err
	}
	s.start()
	return s, nil
}

func open(ctx context.Context, o Options) (*Store, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	cfg := clientv3.Config{
		Endpoints:   o.Endpoints,
		DialTimeout: o.DialTimeout,
		Username:    o.Username,
		Password:    o.Password,
		Logger:      zap.NewNop(), // its retries would flood the log; the store logs what matters
		// Keepalives notice a member gone silent (a partition, a killed machine) so the
		// client moves to another endpoint instead of waiting on a dead connection.
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: o.DialTimeout,
	}
	if o.CACert != "" || o.Cert != "" || o.Key != "" {
		if (o.Cert == "") != (o.Key == "") {
			return nil, errors.New("etcd: give both -etcd-cert and -etcd-key, or neither")
		}
		info := transport.TLSInfo{TrustedCAFile: o.CACert, CertFile: o.Cert, KeyFile: o.Key}
		tc, err := info.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("etcd: TLS settings: %v", err)
		}
		tc.MinVersion = tls.VersionTLS12
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %v", strings.Join(o.Endpoints, ","), err)
	}
	s := &Store{
		cli:         cli,
		prefix:      o.Prefix,
		timeout:     o.DialTimeout,
		electionTTL: cmp.Or(o.ElectionTTL, DefaultElectionTTL),
		log:         o.Log,
		onCommit:    o.OnCommit,
		check:       o.EntryCheck,
		target:      o.TargetCheck,
		historyMax:  cmp.Or(o.History, store.DefaultHistory),
		maxSrv:      o.MaxServers,
		badSeen:     map[string]int64{},
		resync:      make(chan struct{}, 1),
		done:        make(chan struct{}),
	}
	if err := s.load(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcd %s: reading the table under %q: %w", strings.Join(o.Endpoints, ","), o.Prefix, err)
	}
	s.reachable.Store(true)
	return s, nil
}

// start begins following the table (the watch and the health check).
func (s *Store) start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.follow(ctx)
}

// Close stops following and closes the client. Writes after it fail with
// store.ErrClosed; tables already obtained stay readable.
func (s *Store) Close() error {
	s.closed.Store(true)
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	return s.cli.Close()
}

// Current returns the current table.
func (s *Store) Current() *store.Table { return s.cur.Load().table }

// Lineage is derived from etcd's cluster id and the @lineage key; it changes when
// that key is replaced (etcd restored from an older backup).
func (s *Store) Lineage() string { return s.cur.Load().lineage }

// Reachable says whether the last request to etcd went through.
func (s *Store) Reachable() bool { return s.reachable.Load() }

// InvalidKeys is how many keys under the prefix are skipped as not valid servers.
func (s *Store) InvalidKeys() int64 { return s.invalid.Load() }

// Prefix is where the table lives.
func (s *Store) Prefix() string { return s.prefix }

// Page serves a page of the table at rev: the current table, or one an earlier page
// pinned. Pages are cut from this replica's copy, which is the table etcd held at
// rev, read at one pinned revision or followed event by event.
func (s *Store) Page(rev uint64, start string, maxBytes int) (store.Page, error) {
	t := s.pins.Get(rev, s.Current())
	if t == nil {
		return store.Page{}, store.ErrSnapshotGone
	}
	return store.PageOf(t, start, maxBytes), nil
}

// Delta compacts the changes after revision after from the history this replica
// followed since its last full read; ok is false before that or when it does not fit.
func (s *Store) Delta(after uint64, maxBytes int) (store.Delta, bool) {
	v := s.cur.Load()
	cur := v.table.Revision()
	s.mu.Lock()
	defer s.mu.Unlock()
	if after < s.base || after >= cur {
		return store.Delta{}, false
	}
	// Start at the first change after `after` (the history is in revision order).
	i := sort.Search(len(s.history), func(i int) bool { return s.history[i].rev > after })
	type state struct {
		first, last *event
	}
	names := map[string]*state{}
	for j := i; j < len(s.history) && s.history[j].rev <= cur; j++ {
		e := &s.history[j]
		st := names[e.name]
		if st == nil {
			st = &state{first: e}
			names[e.name] = st
		}
		st.last = e
	}
	d := store.Delta{From: after, Revision: cur}
	size := 0
	for name, st := range names {
		switch {
		case st.last.server != nil:
			route := st.last.server.Route()
			size += store.EncodedSize(name, route)
			d.Upserts = append(d.Upserts, store.Route{Name: name, Target: route})
		case st.first.had:
			size += len(name) + 3
			d.Removals = append(d.Removals, name)
		}
		if size > maxBytes {
			return store.Delta{}, false
		}
	}
	slices.SortFunc(d.Upserts, func(a, b store.Route) int { return strings.Compare(a.Name, b.Name) })
	slices.Sort(d.Removals)
	return d, true
}

func (s *Store) rctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, s.timeout)
}

// lineage reads (creating it once when missing) the lineage key and derives the
// lineage from it and etcd's cluster id.
func (s *Store) lineage(ctx context.Context) (string, error) {
	key := s.prefix + lineageKey
	c, cancel := s.rctx(ctx)
	defer cancel()
	var raw [16]byte
	rand.Read(raw[:])
	fresh := hex.EncodeToString(raw[:])
	// Create it only if absent; either way read what is there.
	r, err := s.cli.Txn(c).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, fresh), clientv3.OpGet(key)).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return "", err
	}
	type lin struct {
		v        []byte
		rev, mod int64
	}
	var kv *lin
	for _, op := range r.Responses {
		if g := op.GetResponseRange(); g != nil && len(g.Kvs) == 1 {
			kv = &lin{g.Kvs[0].Value, g.Kvs[0].CreateRevision, g.Kvs[0].ModRevision}
		}
	}
	if kv == nil {
		return "", fmt.Errorf("the lineage key %s vanished while it was read", key)
	}
	if at := s.restoredAt.Load(); at != 0 && !r.Succeeded && kv.mod <= at {
		// etcd went back to an older revision (a restored backup): its history is not
		// the one proxies hold, so the lineage changes. Only a lineage key older than
		// the restore is replaced (another replica may have replaced it since), and
		// the swap compares the value read, so of several replicas noticing at once
		// one replaces it.
		c2, cancel2 := s.rctx(ctx)
		defer cancel2()
		r2, err := s.cli.Txn(c2).
			If(clientv3.Compare(clientv3.Value(key), "=", string(kv.v))).
			Then(clientv3.OpPut(key, fresh), clientv3.OpGet(key)).
			Else(clientv3.OpGet(key)).Commit()
		if err != nil {
			return "", err
		}
		for _, op := range r2.Responses {
			if g := op.GetResponseRange(); g != nil && len(g.Kvs) == 1 {
				kv.v, kv.rev = g.Kvs[0].Value, g.Kvs[0].CreateRevision
			}
		}
		if r2.Succeeded {
			s.log.Warn("etcd's revision went back (restored from a backup?): the table has a new lineage; proxies take it whole", "revision", r2.Header.Revision)
		}
	}
	s.restoredAt.Store(0)
	h := sha256.New()
	binary.Write(h, binary.BigEndian, r.Header.ClusterId)
	binary.Write(h, binary.BigEndian, kv.rev)
	h.Write(kv.v)
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// pageSize is how many keys one request of a full read asks for.
const pageSize = 1000

// load reads the whole prefix at one pinned revision and publishes it.
func (s *Store) load(ctx context.Context) error {
	lin, err := s.lineage(ctx)
	if err != nil {
		return err
	}
	end := clientv3.GetPrefixRangeEnd(s.prefix)
	from := s.prefix
	var pinned, maxMod int64
	var servers []store.Server
	bad := map[string]int64{}
	for {
		// The first page is a linearizable read: the table is at least as new as any
		// write acknowledged before the read began. The others are pinned to its
		// revision, so the pages make one table even while writes go on.
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(pageSize)}
		if pinned != 0 {
			opts = append(opts, clientv3.WithRev(pinned))
		}
		c, cancel := s.rctx(ctx)
		r, err := s.cli.Get(c, from, opts...)
		cancel()
		if err != nil {
			return err
		}
		if pinned == 0 {
			pinned = r.Header.Revision
		}
		for _, kv := range r.Kvs {
			name := string(kv.Key[len(s.prefix):])
			if isElection(name) {
				continue
			}
			maxMod = max(maxMod, kv.ModRevision)
			if name == lineageKey || name == lastWriteKey {
				continue
			}
			sv, err := s.decode(name, kv.Value)
			if err != nil {
				bad[string(kv.Key)] = kv.ModRevision
				s.skip(string(kv.Key), kv.ModRevision, err)
				continue
			}
			servers = append(servers, sv)
		}
		if !r.More || len(r.Kvs) == 0 {
			break
		}
		from = string(r.Kvs[len(r.Kvs)-1].Key) + "\x00"
	}
	last, err := s.lastRemoval(ctx, maxMod, pinned)
	if err != nil {
		return err
	}
	rev := uint64(max(maxMod, last))
	s.fullReads.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.badSeen = bad
	s.invalid.Store(int64(len(bad)))
	old := s.cur.Load()
	if old != nil && old.lineage == lin && old.table.Revision() == rev {
		// The same table (one lineage, one revision): keep it, so no long-poll wakes
		// to be handed the revision it already has.
		s.cur.Store(&view{table: old.table, applied: pinned, lineage: lin})
		return nil
	}
	s.cur.Store(&view{table: store.NewTable(rev, servers), applied: pinned, lineage: lin})
	s.history, s.base = nil, rev
	if old != nil {
		old.table.Supersede()
	}
	return nil
}

// lastRemoval finds the revision of the last removal under the prefix after mod and
// up to pinned: the keys read carry the revision of the last put, not of a deletion
// made after it (by hand with etcdctl: the registrar's own writes also put
// @last-write), and every replica must answer the same revision for the same table.
//
// It replays the history (mod, pinned] with a short watch over the whole key space:
// pinned is the revision of some change, so the replay ends at an event, not at a
// progress notification (which etcd 3.4 may send before the events it covers). When
// that history is compacted, the compaction revision stands for the removals it hid
// (every replica reading afterwards finds the same). When the replay is not allowed
// (etcd auth limits this user to the prefix) or too long, mod is kept and a replica
// reading afresh may answer an older revision than one that followed, until the
// next write.
func (s *Store) lastRemoval(ctx context.Context, mod, pinned int64) (int64, error) {
	const maxReplay = 100000
	if mod >= pinned || pinned-mod > maxReplay {
		return mod, nil
	}
	wctx, cancel := s.rctx(ctx)
	defer cancel()
	wch := s.cli.Watch(clientv3.WithRequireLeader(wctx), "\x00", clientv3.WithFromKey(), clientv3.WithRev(mod+1))
	last := mod
	for resp := range wch {
		if resp.CompactRevision != 0 {
			if resp.CompactRevision >= pinned {
				return pinned, nil
			}
			cancel()
			return s.lastRemoval(ctx, max(last, resp.CompactRevision), pinned)
		}
		if err := resp.Err(); err != nil {
			if errors.Is(err, rpctypes.ErrPermissionDenied) {
				s.log.Warn("etcd: this user may not watch outside the prefix, so the revision of a deletion made by hand is not known until the next write", "err", err)
				return mod, nil
			}
			return 0, fmt.Errorf("replaying the history after revision %d: %v", mod, err)
		}
		// The events of one revision come in one response: read it whole.
		done := false
		for _, ev := range resp.Events {
			rev := ev.Kv.ModRevision
			done = done || rev >= pinned
			if k := string(ev.Kv.Key); rev <= pinned && strings.HasPrefix(k, s.prefix) && !isElection(k[len(s.prefix):]) {
				last = max(last, rev)
			}
		}
		if done {
			return last, nil
		}
	}
	return 0, fmt.Errorf("replaying the history after revision %d: %w", mod, wctx.Err())
}

// skip logs a key that is not a valid server, once per version of the key.
func (s *Store) skip(key string, mod int64, err error) {
	s.log.Warn("skipping an etcd key under the prefix that is not a valid server; fix or delete it", "key", key, "modRevision", mod, "err", err)
}

// decode checks one stored value as the registrar would check a registration,
// with the registrar's own rules (EntryCheck) and the target policy (TargetCheck)
// last: a key written into etcd directly with a refused target is skipped like any
// invalid key.
func (s *Store) decode(name string, value []byte) (store.Server, error) {
	sv, err := decode(name, value)
	if err == nil && s.check != nil {
		err = s.check(sv)
	}
	if err == nil && s.target != nil {
		err = s.target(sv)
	}
	return sv, err
}

// decode checks one stored value's form: name, JSON, host, targets.
func decode(name string, value []byte) (store.Server, error) {
	var sv store.Server
	if err := validate.ServerName(name); err != nil {
		return sv, fmt.Errorf("the name %q after the prefix %v", name, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(value)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sv); err != nil {
		return sv, fmt.Errorf("the value is not a server as JSON: %v", err)
	}
	if sv.Name != name {
		return sv, fmt.Errorf("the value's host %q is not the key's name %q", sv.Name, name)
	}
	if err := store.CheckTargets(sv); err != nil {
		return sv, err
	}
	if err := store.CheckHealthCheck(sv.HealthCheck); err != nil {
		return sv, err
	}
	return sv, nil
}

// follow keeps the table current until ctx ends: watch from the revision after the
// last one applied; start over with a full read when that is no longer possible.
func (s *Store) follow(ctx context.Context) {
	defer close(s.done)
	go s.health(ctx)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.watch(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errResync) {
			if lerr := s.load(ctx); lerr != nil {
				s.reachable.Store(false)
				s.log.Warn("etcd: full read of the table failed; serving the last table and retrying", "err", lerr)
				sleep(ctx, backoff)
				backoff = min(2*backoff, 5*time.Second)
				// The resync is still owed: try again.
				select {
				case s.resync <- struct{}{}:
				default:
				}
				continue
			}
			s.log.Info("etcd: read the whole table afresh", "reason", err, "revision", s.Current().Revision(), "servers", s.Current().Len())
			backoff = 100 * time.Millisecond
			continue
		}
		if err != nil {
			s.log.Warn("etcd: the watch ended; opening it again from the last revision applied", "err", err)
		}
		sleep(ctx, backoff)
		backoff = min(2*backoff, 5*time.Second)
	}
}

var errResync = errors.New("a full read is needed")

// watch follows the prefix from the revision after the last applied until an error;
// errResync wrapped means the history cannot be followed.
func (s *Store) watch(ctx context.Context) error {
	select {
	case <-s.resync:
		return fmt.Errorf("%w: asked for", errResync)
	default:
	}
	from := s.cur.Load().applied + 1
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.cli.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(from), clientv3.WithProgressNotify())
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.resync:
			return fmt.Errorf("%w: asked for", errResync)
		case resp, ok = <-wch:
		}
		if !ok {
			return errors.New("watch channel closed")
		}
		if resp.CompactRevision != 0 {
			return fmt.Errorf("%w: history compacted up to revision %d, past revision %d this replica needs", errResync, resp.CompactRevision, from)
		}
		if err := resp.Err(); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				return fmt.Errorf("%w: %v", errResync, err)
			}
			return err
		}
		s.reachable.Store(true)
		if applied := s.cur.Load().applied; resp.Header.Revision < applied {
			// A watch reply's header can trail what this watch already delivered (etcd
			// 3.4 sends progress notifications out of step with events), so only a
			// linearizable read tells a restored etcd from a late header.
			if now, err := s.linearRevision(ctx); err == nil && now < applied {
				s.restoredAt.Store(now)
				return fmt.Errorf("%w: etcd's revision %d is behind the %d already applied (etcd restored?)", errResync, now, applied)
			}
		}
		if resp.IsProgressNotify() || len(resp.Events) == 0 {
			// Nothing changed up to the header revision; the table's revision stays.
			continue
		}
		s.apply(resp.Events)
	}
}

// linearRevision is etcd's current revision by a linearizable read (through the
// leader's read index, so no older than any committed write).
func (s *Store) linearRevision(ctx context.Context) (int64, error) {
	c, cancel := s.rctx(ctx)
	defer cancel()
	r, err := s.cli.Get(c, s.prefix+lineageKey)
	if err != nil {
		return 0, err
	}
	return r.Header.Revision, nil
}

// apply publishes the table after a watch response's events (all the events of a
// revision come in one response, so a table never shows half a transaction).
func (s *Store) apply(evs []*clientv3.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	rev, applied := old.table.Revision(), old.applied
	// final is each changed name's state after the events (nil: removed).
	final := map[string]*store.Server{}
	present := func(name string) bool {
		if sv, ok := final[name]; ok {
			return sv != nil
		}
		_, ok := old.table.Get(name)
		return ok
	}
	for _, ev := range evs {
		r := ev.Kv.ModRevision
		key := string(ev.Kv.Key)
		applied = max(applied, r)
		name := key[len(s.prefix):]
		if isElection(name) {
			continue
		}
		rev = max(rev, uint64(r))
		if name == lineageKey {
			if ev.Type == clientv3.EventTypeDelete || ev.Kv.Version > 1 {
				// Someone replaced the lineage: a new history.
				select {
				case s.resync <- struct{}{}:
				default:
				}
			}
			continue
		}
		if name == lastWriteKey {
			continue
		}
		delete(s.badSeen, key)
		var sv *store.Server
		if ev.Type != clientv3.EventTypeDelete {
			v, err := s.decode(name, ev.Kv.Value)
			if err != nil {
				// Skipped; a valid server replaced by an invalid value is no longer
				// served.
				s.badSeen[key] = r
				s.skip(key, r, err)
			} else {
				sv = &v
			}
		}
		had := present(name)
		if sv == nil && !had {
			continue
		}
		final[name] = sv
		s.history = append(s.history, event{rev: uint64(r), name: name, server: sv, had: had})
	}
	s.invalid.Store(int64(len(s.badSeen)))
	s.trimHistory()
	var upserts []store.Server
	var removals []string
	for name, sv := range final {
		if sv != nil {
			upserts = append(upserts, *sv)
		} else {
			removals = append(removals, name)
		}
	}
	if rev == old.table.Revision() {
		s.cur.Store(&view{table: old.table, applied: applied, lineage: old.lineage})
		return
	}
	s.cur.Store(&view{table: old.table.Next(rev, upserts, removals), applied: applied, lineage: old.lineage})
	old.table.Supersede()
}

// trimHistory drops the oldest revisions beyond historyMax changes; base moves to
// the last revision dropped (deltas from before it are no longer held).
func (s *Store) trimHistory() {
	if len(s.history) <= s.historyMax {
		return
	}
	cut := len(s.history) - s.historyMax
	// Never split a revision: drop its other changes too.
	for cut < len(s.history) && s.history[cut].rev == s.history[cut-1].rev {
		cut++
	}
	s.base = s.history[cut-1].rev
	s.history = slices.Clone(s.history[cut:])
}

// health checks etcd every second with a linearizable read of the lineage key: it
// keeps Reachable current, and notices etcd restored from an older backup (its
// revision behind the one applied) or a replaced lineage while no events flow.
func (s *Store) health(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c, cancel := s.rctx(ctx)
		r, err := s.cli.Get(c, s.prefix+lineageKey)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if s.reachable.Swap(false) {
				s.log.Warn("etcd unreachable; serving the last table, writes fail until it returns", "err", err)
			}
			continue
		}
		if !s.reachable.Swap(true) {
			s.log.Info("etcd reachable again", "revision", r.Header.Revision)
		}
		behind := r.Header.Revision < s.cur.Load().applied
		if behind {
			s.restoredAt.Store(r.Header.Revision)
		}
		if behind || len(r.Kvs) == 0 {
			select {
			case s.resync <- struct{}{}:
			default:
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
