package etcdstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Change sets (Server != nil) or removes (Server == nil) one host.
type Change struct {
	Host   string
	Server *Server
	// MustExist makes a removal of an absent host fail with ErrNotFound.
	MustExist bool
}

// Outcome is what a committed write reports back, as the embedded store's.
type Outcome struct {
	Revision uint64
	Changed  bool
	Old, New []*Server
	Err      error
}

// ErrNotFound is a removal (MustExist) of a host that is not registered.
var ErrNotFound = errors.New("not registered")

// maxTries bounds how often a write is retried when another replica changed one of
// its keys between this replica's view and the commit.
const maxTries = 20

// Write applies changes as one all-or-nothing etcd transaction and returns once etcd
// has committed it and this replica's table shows it. now stamps updatedAt of the
// servers whose content changes.
func (s *Store) Write(ctx context.Context, now time.Time, changes ...Change) Outcome {
	t := s.Table()
	view := map[string]entry{}
	for _, c := range changes {
		if sv, ok := t.Servers[c.Host]; ok {
			view[c.Host] = entry{server: sv, mod: t.mods[c.Host]}
		}
	}
	for try := 0; try < maxTries; try++ {
		out, cmps, ops := plan(s.prefix, view, changes, now)
		if out.Err != nil {
			if errors.Is(out.Err, ErrNotFound) && try == 0 {
				// This replica may be behind: confirm with etcd before refusing.
				if err := s.refresh(ctx, view, changes); err != nil {
					return Outcome{Err: err}
				}
				continue
			}
			return out
		}
		if !out.Changed {
			out.Revision = s.Table().Revision
			if try == 0 {
				// Confirm with etcd that nothing is to be done (this replica may be
				// behind); a write that changes nothing moves nothing.
				if err := s.refresh(ctx, view, changes); err != nil {
					return Outcome{Err: err}
				}
				continue
			}
			return out
		}
		c, cancel := s.rctx(ctx)
		r, err := s.cli.Txn(c).If(cmps...).Then(ops...).Commit()
		cancel()
		if err != nil {
			s.reachable.Store(false)
			return Outcome{Err: unavailable(s, err)}
		}
		s.reachable.Store(true)
		if !r.Succeeded {
			// Another replica changed one of the keys: read them again and retry.
			if err := s.refresh(ctx, view, changes); err != nil {
				return Outcome{Err: err}
			}
			continue
		}
		out.Revision = uint64(r.Header.Revision)
		s.waitApplied(ctx, r.Header.Revision)
		return out
	}
	return Outcome{Err: fmt.Errorf("%w: the servers of this write kept changing under it (%d tries); retry", ErrUnavailable, maxTries)}
}

func unavailable(s *Store, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: etcd did not confirm the write within %v (%v); it may or may not have been applied: retry it (a registration is idempotent)", ErrUnavailable, s.timeout, s.cli.Endpoints())
	}
	return fmt.Errorf("%w: %v (endpoints %v); retry when etcd is back", ErrUnavailable, err, s.cli.Endpoints())
}

// refresh reads the keys of changes from etcd (linearizable) into view.
func (s *Store) refresh(ctx context.Context, view map[string]entry, changes []Change) error {
	var ops []clientv3.Op
	for _, c := range changes {
		ops = append(ops, clientv3.OpGet(s.prefix+c.Host))
	}
	c, cancel := s.rctx(ctx)
	r, err := s.cli.Txn(c).Then(ops...).Commit()
	cancel()
	if err != nil {
		s.reachable.Store(false)
		return unavailable(s, err)
	}
	s.reachable.Store(true)
	for i, op := range r.Responses {
		host := changes[i].Host
		delete(view, host)
		g := op.GetResponseRange()
		if g == nil || len(g.Kvs) == 0 {
			continue
		}
		kv := g.Kvs[0]
		sv, derr := decode(host, kv.Value)
		if derr != nil {
			// An invalid value is not served: treat as absent, but compare its
			// mod revision so the write replaces exactly it.
			view[host] = entry{mod: -kv.ModRevision}
			continue
		}
		view[host] = entry{server: sv, mod: kv.ModRevision}
	}
	return nil
}

// plan computes one write's outcome against view and the transaction that makes it:
// compares on every key's mod revision (0: must not exist), the puts and deletes,
// and the @last-write marker.
func plan(prefix string, view map[string]entry, changes []Change, now time.Time) (Outcome, []clientv3.Cmp, []clientv3.Op) {
	var out Outcome
	for _, c := range changes {
		if e, ok := view[c.Host]; c.Server == nil && c.MustExist && (!ok || e.mod < 0) {
			return Outcome{Err: ErrNotFound}, nil, nil
		}
	}
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	for _, c := range changes {
		key := prefix + c.Host
		e, had := view[c.Host]
		invalid := had && e.mod < 0
		mod := e.mod
		if invalid {
			mod = -mod
			had = false
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", mod))
		if had {
			o := e.server
			out.Old = append(out.Old, &o)
		} else {
			out.Old = append(out.Old, nil)
		}
		if c.Server == nil {
			out.New = append(out.New, nil)
			if had || invalid {
				ops = append(ops, clientv3.OpDelete(key))
				out.Changed = out.Changed || had
			}
			continue
		}
		if had && e.server.IPAddress == c.Server.IPAddress && e.server.ServiceName == c.Server.ServiceName {
			out.New = append(out.New, out.Old[len(out.Old)-1])
			continue
		}
		sv := *c.Server
		sv.Host = c.Host
		sv.UpdatedAt = now
		body, _ := json.Marshal(sv)
		ops = append(ops, clientv3.OpPut(key, string(body)))
		out.New = append(out.New, &sv)
		out.Changed = true
	}
	if out.Changed {
		ops = append(ops, clientv3.OpPut(prefix+lastWriteKey, changes[0].Host))
	}
	return out, cmps, ops
}

// waitApplied waits (at most the request timeout) until the watch has applied rev,
// so a read through this replica after the acknowledgement sees the write. The write
// is committed either way; a slow watch only delays what this replica shows.
func (s *Store) waitApplied(ctx context.Context, rev int64) {
	deadline := time.NewTimer(s.timeout)
	defer deadline.Stop()
	for {
		t := s.Table()
		s.mu.Lock()
		done := s.applied >= rev
		s.mu.Unlock()
		if done {
			return
		}
		select {
		case <-t.Changed:
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
