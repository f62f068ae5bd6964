package etcdstore

import (
	"context"
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
		if errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrRequestTooLarge) {
			return store.WriteResult{Err: fmt.Errorf("%w: %w: etcd refused this write of %d changes as one transaction (%v): etcd allows at most --max-txn-ops operations (default 128) and --max-request-bytes (default 1.5 MiB) in one; raise them on every etcd member, or write in parts", store.ErrTooLarge, store.ErrNotSaved, len(changes), err)}
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
