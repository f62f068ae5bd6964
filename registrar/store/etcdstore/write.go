package etcdstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"switchyard/registrar/store"
)

// maxTries bounds how often a write is retried when another replica changed one of
// its keys between this replica's view and the commit.
const maxTries = 20

// known is what a write believes of one key: the server there (nil: none served) and
// how to check that belief in the transaction.
type known struct {
	server *store.Server
	// exact: the key's mod revision is mod (0: the key does not exist), from a read
	// of the key itself. Otherwise the key must not have changed after the
	// replica's view (mod revision < mod).
	exact bool
	mod   int64
}

// Write applies changes as one all-or-nothing etcd transaction and returns once etcd
// has committed it and this replica's table shows it. It first trusts this
// replica's table (the transaction checks that none of its keys changed since); when
// another replica got there first, it reads the keys from etcd and tries again.
func (s *Store) Write(changes ...store.Change) store.WriteResult {
	if s.closed.Load() {
		return store.WriteResult{Err: store.ErrClosed}
	}
	ctx := context.Background()
	now := time.Now().UTC()
	v := s.cur.Load()
	view := map[string]known{}
	for _, c := range changes {
		k := known{mod: v.applied + 1}
		if sv, ok := v.table.Get(c.Name); ok {
			k.server = &sv
		}
		view[c.Name] = k
	}
	refreshed := false
	for try := 0; try < maxTries; try++ {
		out, cmps, ops := plan(s.prefix, view, changes, now)
		if (out.Err != nil || !out.Changed) && !refreshed {
			// Refusing (not registered) or doing nothing on this replica's word: it
			// may be behind, so confirm with etcd first.
			if err := s.refresh(ctx, view, changes); err != nil {
				return store.WriteResult{Err: err}
			}
			refreshed = true
			continue
		}
		if out.Err != nil {
			return out
		}
		if s.maxSrv > 0 && out.Changed {
			n := s.Current().Len()
			for i := range changes {
				switch {
				case out.Old[i] == nil && out.New[i] != nil:
					n++
				case out.Old[i] != nil && out.New[i] == nil:
					n--
				}
			}
			if n > s.maxSrv && n > s.Current().Len() {
				return store.WriteResult{Err: store.ErrTableFull}
			}
		}
		if !out.Changed {
			out.Revision = s.Current().Revision()
			return out
		}
		start := time.Now()
		c, cancel := s.rctx(ctx)
		r, err := s.cli.Txn(c).If(cmps...).Then(ops...).Commit()
		cancel()
		if tooLarge(err) {
			return store.WriteResult{Err: tooLargeErr(fmt.Sprintf("this write of %d changes", len(changes)), "or write in parts", err)}
		}
		if err != nil {
			s.reachable.Store(false)
			return store.WriteResult{Err: s.unavailable(err)}
		}
		s.reachable.Store(true)
		if !r.Succeeded {
			if err := s.refresh(ctx, view, changes); err != nil {
				return store.WriteResult{Err: err}
			}
			refreshed = true
			continue
		}
		out.Revision = uint64(r.Header.Revision)
		s.waitApplied(ctx, r.Header.Revision)
		if s.onCommit != nil {
			s.onCommit(store.Commit{Table: s.Current(), Writes: 1, Took: time.Since(start)})
		}
		return out
	}
	return store.WriteResult{Err: fmt.Errorf("%w: etcd: the servers of this write kept changing under it (%d tries); retry", store.ErrUnavailable, maxTries)}
}

// tooLarge says whether etcd refused a transaction for its size.
func tooLarge(err error) bool {
	return errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrRequestTooLarge)
}

// tooLargeErr says that etcd refused what (a transaction) for its size, and what to
// do: raise etcd's limits, or else.
func tooLargeErr(what, orElse string, err error) error {
	if orElse != "" {
		orElse = ", " + orElse
	}
	return fmt.Errorf("%w: %w: etcd refused %s as one transaction (%v): etcd allows at most --max-txn-ops operations (default 128) and --max-request-bytes (default 1.5 MiB) in one; raise them on every etcd member%s", store.ErrTooLarge, store.ErrNotSaved, what, err, orElse)
}

func (s *Store) unavailable(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: etcd (%v) did not confirm the write within %v; it may or may not have been applied: retry it once etcd is reachable", store.ErrUnavailable, s.cli.Endpoints(), s.timeout)
	}
	return fmt.Errorf("%w: etcd (%v): %v; retry once etcd is reachable", store.ErrUnavailable, s.cli.Endpoints(), err)
}

// refresh reads the keys of changes from etcd (one linearizable transaction) into view.
func (s *Store) refresh(ctx context.Context, view map[string]known, changes []store.Change) error {
	var ops []clientv3.Op
	for _, c := range changes {
		ops = append(ops, clientv3.OpGet(s.prefix+c.Name))
	}
	c, cancel := s.rctx(ctx)
	r, err := s.cli.Txn(c).Then(ops...).Commit()
	cancel()
	if err != nil {
		s.reachable.Store(false)
		return s.unavailable(err)
	}
	s.reachable.Store(true)
	for i, op := range r.Responses {
		name := changes[i].Name
		k := known{exact: true}
		if g := op.GetResponseRange(); g != nil && len(g.Kvs) == 1 {
			kv := g.Kvs[0]
			k.mod = kv.ModRevision
			// An invalid value is not served: the write treats the name as not
			// registered, and replaces exactly that value.
			if sv, err := s.decode(name, kv.Value); err == nil {
				k.server = &sv
			}
		}
		view[name] = k
	}
	return nil
}

// plan computes one write's outcome against view and the transaction that makes it:
// a compare per key, the puts and deletes, and the @last-write marker that gives a
// fresh read the revision of the last change (deletions included).
func plan(prefix string, view map[string]known, changes []store.Change, now time.Time) (store.WriteResult, []clientv3.Cmp, []clientv3.Op) {
	var out store.WriteResult
	sets, err := store.Resolve(changes, func(name string) *store.Server { return view[name].server })
	if err != nil {
		return store.WriteResult{Err: err}, nil, nil
	}
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	for i, c := range changes {
		key := prefix + c.Name
		k := view[c.Name]
		if k.exact {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", k.mod))
		} else {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "<", k.mod))
		}
		out.Old = append(out.Old, k.server)
		if sets[i] == nil {
			out.New = append(out.New, nil)
			if k.server != nil {
				ops = append(ops, clientv3.OpDelete(key))
				out.Changed = true
			}
			continue
		}
		if k.server != nil && store.SameContent(*k.server, *sets[i]) {
			out.New = append(out.New, k.server)
			continue // same content: keep updatedAt and the revision
		}
		sv := *sets[i]
		sv.Name = c.Name
		sv.UpdatedAt = now
		body, _ := json.Marshal(sv)
		ops = append(ops, clientv3.OpPut(key, string(body)))
		out.New = append(out.New, &sv)
		out.Changed = true
	}
	if out.Changed {
		ops = append(ops, clientv3.OpPut(prefix+lastWriteKey, changes[0].Name))
	}
	return out, cmps, ops
}

// waitApplied waits (at most the request timeout) until the watch has applied rev,
// so a read through this replica after the acknowledgement sees the write. The write
// is committed either way; a watch slower than that only delays what this replica
// shows.
func (s *Store) waitApplied(ctx context.Context, rev int64) {
	deadline := time.NewTimer(s.timeout)
	defer deadline.Stop()
	for {
		v := s.cur.Load()
		if v.applied >= rev {
			return
		}
		select {
		case <-v.table.Changed():
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// Replace makes servers the whole table in one etcd transaction and replaces the
// lineage key in it, so that every replica, and every proxy, takes the table whole as
// a new history. The transaction holds only what changes (servers to put, keys to
// delete) and commits only if nothing under the prefix changed since the read it was
// planned from; it is retried when something did. etcd's --max-txn-ops (default 128)
// bounds what one Replace can change: a larger one fails with ErrTransactionTooLarge
// and changes nothing. It returns once this replica serves the new history (or after
// the request timeout: the write is committed either way).
func (s *Store) Replace(servers []store.Server) store.WriteResult {
	if s.closed.Load() {
		return store.WriteResult{Err: store.ErrClosed}
	}
	want := make(map[string]store.Server, len(servers))
	for _, sv := range servers {
		if _, dup := want[sv.Name]; dup {
			return store.WriteResult{Err: fmt.Errorf("server %q appears more than once", sv.Name)}
		}
		want[sv.Name] = sv
	}
	if s.maxSrv > 0 && len(want) > s.maxSrv {
		return store.WriteResult{Err: store.ErrTableFull}
	}
	ctx := context.Background()
	now := time.Now().UTC()
	old := s.Lineage()
	for try := 0; try < maxTries; try++ {
		c, cancel := s.rctx(ctx)
		r, err := s.cli.Get(c, s.prefix, clientv3.WithPrefix())
		cancel()
		if err != nil {
			s.reachable.Store(false)
			return store.WriteResult{Err: s.unavailable(err)}
		}
		var ops []clientv3.Op
		kept := map[string]bool{}
		for _, kv := range r.Kvs {
			name := string(kv.Key[len(s.prefix):])
			if name == lineageKey || name == lastWriteKey {
				continue
			}
			sv, ok := want[name]
			if !ok {
				ops = append(ops, clientv3.OpDelete(string(kv.Key)))
				continue
			}
			if cur, err := s.decode(name, kv.Value); err == nil && store.SameContent(cur, sv) {
				kept[name] = true // same content: keep updatedAt and the key's revision
			}
		}
		for name, sv := range want {
			if kept[name] {
				continue
			}
			if sv.UpdatedAt.IsZero() {
				sv.UpdatedAt = now
			}
			body, _ := json.Marshal(sv)
			ops = append(ops, clientv3.OpPut(s.prefix+name, string(body)))
		}
		var raw [16]byte
		rand.Read(raw[:])
		ops = append(ops, clientv3.OpPut(s.prefix+lineageKey, hex.EncodeToString(raw[:])), clientv3.OpPut(s.prefix+lastWriteKey, "@replace"))
		unchanged := clientv3.Compare(clientv3.ModRevision(s.prefix), "<", r.Header.Revision+1).WithPrefix()
		c, cancel = s.rctx(ctx)
		tr, err := s.cli.Txn(c).If(unchanged).Then(ops...).Commit()
		cancel()
		if tooLarge(err) {
			return store.WriteResult{Err: tooLargeErr(fmt.Sprintf("replacing the table (%d operations)", len(ops)), "", err)}
		}
		if err != nil {
			s.reachable.Store(false)
			return store.WriteResult{Err: s.unavailable(err)}
		}
		s.reachable.Store(true)
		if !tr.Succeeded {
			continue // written meanwhile: plan again from a new read
		}
		rev := tr.Header.Revision
		deadline := time.NewTimer(s.timeout)
		defer deadline.Stop()
	wait:
		for {
			v := s.cur.Load()
			if v.lineage != old && v.applied >= rev {
				break
			}
			select {
			case <-v.table.Changed():
			case <-deadline.C:
				break wait
			}
		}
		if s.onCommit != nil {
			s.onCommit(store.Commit{Table: s.Current(), Writes: 1, Took: time.Since(now)})
		}
		return store.WriteResult{Revision: uint64(rev), Changed: true}
	}
	return store.WriteResult{Err: fmt.Errorf("%w: etcd: the table kept changing while it was being replaced (%d tries); retry", store.ErrUnavailable, maxTries)}
}
