package etcdstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"
)

// electionKey is where the replicas elect the one that runs the active health checks:
// each candidate holds the key electionKey + "/" + its lease id (etcd's concurrency
// package), and the oldest one leads.
const electionKey = "@health-checker"

// isElection says whether name (a key after the prefix) is an election candidate's.
func isElection(name string) bool { return strings.HasPrefix(name, electionKey+"/") }

// Lead campaigns, with this replica's name as the candidate's value, until this
// replica leads the health checks or ctx ends. The candidacy lives on a lease of
// Options.ElectionTTL, kept alive while this process runs: when the process dies the
// lease expires within that time and the next candidate leads. lost is closed when
// leadership ends (lease lost: etcd unreachable longer than ttl, or ctx done); resign
// gives leadership up at once (a clean stop) and must be called once.
func (s *Store) Lead(ctx context.Context, name string) (lost <-chan struct{}, resign func(), err error) {
	secs := max(1, int(s.electionTTL/time.Second))
	sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(secs), concurrency.WithContext(ctx))
	if err != nil {
		return nil, nil, fmt.Errorf("etcd: opening a session for the health-check election: %w", err)
	}
	e := concurrency.NewElection(sess, s.prefix+electionKey)
	if err := e.Campaign(ctx, name); err != nil {
		sess.Close()
		return nil, nil, fmt.Errorf("etcd: campaigning in the health-check election: %w", err)
	}
	return sess.Done(), func() {
		c, cancel := s.rctx(context.Background())
		defer cancel()
		e.Resign(c)
		sess.Close()
	}, nil
}
