package server

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"syscall"
	"time"

	"switchyard/internal/targetpolicy"
	"switchyard/internal/validate"
	"switchyard/registrar/store"

	"github.com/prometheus/client_golang/prometheus"
)

// The active health check (README, "Active health checks"): for every server with a
// healthCheck, the registrar sends GET healthCheck.path to each target and writes the
// targets it finds down into the table (Target.Down, the target-set flag x), so every
// proxy skips them after one propagation; after healthyThreshold passed checks it
// writes them up again. One registrar checks at a time: with the embedded store the
// only one, with etcd the replica the election under the prefix chose (leader).
//
// A check is one GET over a new connection (no reuse, so every check dials, resolves
// and applies the target policy afresh), with no proxy from the environment, no
// redirect followed (3xx fails the check), the answer's body read up to
// checkBodyBytes and dropped. Its dialer applies the target policy to every address a
// DNS name resolves to, so a check never connects where the proxies may not; a
// refused address fails the check. At most checkWorkers checks run at once; a
// target's next check is due an interval after its last one started.

// checkWorkers is how many checks run at once, whatever the number of targets.
const checkWorkers = 16

// checkBodyBytes is the most of an answer's body a check reads.
const checkBodyBytes = 4 << 10

// leader is how a registrar learns it should check: lead blocks until this registrar
// leads (or ctx ends, then err), and returns a channel closed when leadership is lost
// and a function to give it up.
type leader interface {
	lead(ctx context.Context) (lost <-chan struct{}, resign func(), err error)
}

// soleLeader leads at once and forever: the embedded store has one registrar.
type soleLeader struct{}

func (soleLeader) lead(context.Context) (<-chan struct{}, func(), error) {
	return nil, func() {}, nil
}

// electing is a store whose replicas elect one among them (the etcd store): Lead
// campaigns under this replica's name until it leads or ctx ends.
type electing interface {
	Lead(ctx context.Context, name string) (lost <-chan struct{}, resign func(), err error)
}

// electedLeader leads when the store's election says so.
type electedLeader struct {
	st   electing
	name func() string
}

func (l electedLeader) lead(ctx context.Context) (<-chan struct{}, func(), error) {
	return l.st.Lead(ctx, l.name())
}

// probe is one target of one checked server.
type probe struct {
	name, address string
	hc            store.HealthCheck
	down          bool // as the table says (or as this checker last wrote)
	passed, fails int  // checks in a row
	due           time.Time
	index         int  // in the checker's queue; -1 when not queued
	gone          bool // no longer a target of a checked server
}

// queue orders probes by when they are due.
type queue []*probe

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *queue) Push(x any) { p := x.(*probe); p.index = len(*q); *q = append(*q, p) }
func (q *queue) Pop() any {
	old := *q
	p := old[len(old)-1]
	p.index = -1
	*q = old[:len(old)-1]
	return p
}

// checker runs the active health checks of one registrar.
type checker struct {
	st     store.Store
	policy Policy
	log    *slog.Logger
	leader leader
	m      *checkMetrics
	// replica names this registrar in each check's User-Agent, so a target's log
	// shows which replica checks it.
	replica func() string
	// resolver resolves DNS-name targets (nil: the system's).
	resolver *net.Resolver

	mu      sync.Mutex
	servers map[string]map[string]*probe // server name → address → probe
	queue   queue
	leading bool
	term    int // counts leadership terms, so a check of a past term is dropped

	poke chan struct{} // the queue changed
	done chan struct{}
}

type checkMetrics struct {
	checks   *prometheus.CounterVec
	failures *prometheus.CounterVec
	writes   prometheus.Counter
	leading  prometheus.Gauge
}

func newCheckMetrics(reg *prometheus.Registry, c *checker) *checkMetrics {
	m := &checkMetrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registrar_health_checks_total",
			Help: "Active health checks made by this registrar, by result (passed, failed).",
		}, []string{"result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registrar_health_check_failures_total",
			Help: "Failed active health checks by reason: status (not 2xx), timeout, connect (refused, reset, unreachable), refused (the target policy refuses the address).",
		}, []string{"reason"}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registrar_health_changes_total",
			Help: "Targets this registrar wrote down or up again after their health checks.",
		}),
		leading: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "registrar_health_checking",
			Help: "1 while this registrar is the one that runs the active health checks (the embedded store's, or the etcd replicas' elected one), else 0.",
		}),
	}
	down := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "registrar_health_targets_down",
		Help: "Targets of the current table that the active health check has marked down.",
	}, func() float64 { return float64(c.downCount()) })
	reg.MustRegister(m.checks, m.failures, m.writes, m.leading, down)
	return m
}

func newChecker(st store.Store, p Policy, log *slog.Logger, l leader, replica func() string, reg *prometheus.Registry) *checker {
	c := &checker{st: st, policy: p, log: log, leader: l, replica: replica, servers: map[string]map[string]*probe{},
		poke: make(chan struct{}, 1), done: make(chan struct{})}
	c.m = newCheckMetrics(reg, c)
	return c
}

// run follows the table and, while this registrar leads, checks; it returns when
// ctx ends.
func (c *checker) run(ctx context.Context) {
	defer close(c.done)
	go c.follow(ctx)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		lost, resign, err := c.leader.lead(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("health checks: cannot take part in the election; retrying", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 5*time.Second)
			}
			continue
		}
		backoff = 100 * time.Millisecond
		c.log.Info("health checks: this registrar runs them")
		tctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { c.lead(tctx) })
		select {
		case <-lost:
			c.log.Warn("health checks: leadership lost (etcd unreachable longer than the election TTL?); another replica takes over")
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			resign() // before the checks stop, so the next replica starts at once
		}
		cancel()
		wg.Wait()
		if ctx.Err() == nil {
			resign()
		}
	}
}

// lead runs one leadership term: every probe due soon (spread over a tenth of its
// interval), checkWorkers workers, until ctx ends.
func (c *checker) lead(ctx context.Context) {
	jobs := make(chan *probe)
	c.mu.Lock()
	c.leading = true
	c.term++
	term := c.term
	now := time.Now()
	for _, ps := range c.servers {
		for _, p := range ps {
			p.passed, p.fails = 0, 0
			p.due = now.Add(jitter(p.hc))
			if p.index < 0 {
				heap.Push(&c.queue, p)
			}
		}
	}
	heap.Init(&c.queue)
	c.mu.Unlock()
	c.m.leading.Set(1)
	var wg sync.WaitGroup
	client := c.client()
	for range checkWorkers {
		wg.Go(func() {
			for p := range jobs {
				c.check(ctx, client, term, p)
			}
		})
	}
	c.schedule(ctx, jobs)
	close(jobs)
	wg.Wait()
	c.mu.Lock()
	c.leading = false
	c.mu.Unlock()
	c.m.leading.Set(0)
}

func jitter(hc store.HealthCheck) time.Duration {
	return rand.N(time.Duration(hc.Interval)/10 + 1)
}

// schedule hands due probes to the workers until ctx ends. A probe is out of the
// queue while it is checked, so one target never has two checks at once.
func (c *checker) schedule(ctx context.Context, jobs chan<- *probe) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.mu.Lock()
		var next *probe
		wait := time.Hour
		if len(c.queue) > 0 {
			if d := time.Until(c.queue[0].due); d <= 0 {
				next = heap.Pop(&c.queue).(*probe)
			} else {
				wait = d
			}
		}
		c.mu.Unlock()
		if next != nil {
			select {
			case jobs <- next:
			case <-ctx.Done():
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-c.poke:
		case <-timer.C:
		}
	}
}

func (c *checker) wake() {
	select {
	case c.poke <- struct{}{}:
	default:
	}
}

// check runs one check of p, records it and writes a change of health when a
// threshold is crossed; then queues p's next check.
func (c *checker) check(ctx context.Context, client *http.Client, term int, p *probe) {
	start := time.Now()
	reason, detail := c.probe(ctx, client, p)
	if ctx.Err() != nil {
		return // the term ended; the next leader checks afresh
	}
	c.m.checks.WithLabelValues(map[bool]string{true: "passed", false: "failed"}[reason == ""]).Inc()
	if reason != "" {
		c.m.failures.WithLabelValues(reason).Inc()
	}
	c.mu.Lock()
	if p.gone || term != c.term {
		c.mu.Unlock()
		return
	}
	if reason == "" {
		p.passed, p.fails = p.passed+1, 0
	} else {
		p.passed, p.fails = 0, p.fails+1
	}
	flip := (!p.down && p.fails >= p.hc.UnhealthyThreshold) || (p.down && p.passed >= p.hc.HealthyThreshold)
	want := !p.down
	c.mu.Unlock()
	if flip && c.setDown(p.name, p.address, want) {
		c.mu.Lock()
		if !p.gone {
			p.down = want
		}
		c.mu.Unlock()
		c.m.writes.Inc()
		if want {
			c.log.Warn("health check: target down", "host", p.name, "target", p.address, "failed", p.hc.UnhealthyThreshold, "reason", detail)
		} else {
			c.log.Info("health check: target up again", "host", p.name, "target", p.address, "passed", p.hc.HealthyThreshold)
		}
	}
	c.mu.Lock()
	if !p.gone && term == c.term {
		p.due = start.Add(time.Duration(p.hc.Interval))
		heap.Push(&c.queue, p)
	}
	c.mu.Unlock()
	c.wake()
}

// setDown writes target address of server name down (or up), leaving everything else
// of the server as the write finds it; it reports whether the table now says so.
func (c *checker) setDown(name, address string, down bool) bool {
	out := c.st.Write(store.Change{Name: name, Update: func(old *store.Server) (*store.Server, error) {
		if old == nil || old.HealthCheck == nil {
			return old, nil // removed, or no longer checked, meanwhile
		}
		ts := old.TargetList()
		i := slices.IndexFunc(ts, func(t store.Target) bool { return t.Address == address })
		if i < 0 || ts[i].Down == down {
			return old, nil
		}
		ts = slices.Clone(ts)
		ts[i].Down = down
		sv := store.NewServer(old.Name, old.Service, ts)
		sv.HealthCheck = old.HealthCheck
		return &sv, nil
	}})
	if out.Err != nil {
		c.log.Warn("health check: could not write a target's health; the next check tries again", "host", name, "target", address, "down", down, "err", out.Err)
		return false
	}
	if out.Changed {
		c.log.Info("audit", "action", "health", "host", name, "target", address, "down", down, "revision", out.Revision)
	}
	return true
}

// probe makes one check: reason "" when it passed, else the failure's kind (a
// metric label) and detail (for the log).
func (c *checker) probe(ctx context.Context, client *http.Client, p *probe) (reason, detail string) {
	a, err := validate.ParseAddress(p.address)
	if err == nil {
		err = c.policy.Check(a)
	}
	if err != nil {
		return "refused", "the target policy refuses the address: " + err.Error()
	}
	u, _ := url.ParseRequestURI(p.hc.Path) // checked when written
	u.Scheme, u.Host = "http", p.address
	rctx, cancel := context.WithTimeout(ctx, time.Duration(p.hc.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(withServer(rctx, p.name), http.MethodGet, u.String(), nil)
	if err != nil {
		return "connect", err.Error()
	}
	req.Header.Set("User-Agent", "switchyard-registrar (health check; replica "+c.replica()+")")
	resp, err := client.Do(req)
	if err != nil {
		var refused *refusedDial
		switch {
		case errors.As(err, &refused):
			return "refused", refused.reason
		case rctx.Err() != nil:
			return "timeout", fmt.Sprintf("no answer within %v", time.Duration(p.hc.Timeout))
		}
		return "connect", err.Error()
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, checkBodyBytes))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "status", fmt.Sprintf("GET %s answered %d", p.hc.Path, resp.StatusCode)
	}
	return "", ""
}

type serverKey struct{}

func withServer(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, serverKey{}, name)
}

// refusedDial is a connection the dialer would not make: the address it resolved to
// is refused by the target policy.
type refusedDial struct{ reason string }

func (e *refusedDial) Error() string { return e.reason }

// client is the HTTP client of the checks: a new connection per check, the target
// policy applied to the address each connection is about to reach, no environment
// proxy, no redirects, bounded headers.
func (c *checker) client() *http.Client {
	dialer := &net.Dialer{
		Resolver: c.resolver,
		ControlContext: func(ctx context.Context, network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &refusedDial{"not an IP address and port: " + address}
			}
			name, _ := ctx.Value(serverKey{}).(string)
			if err := c.policy.CheckResolved(name, ap.Addr()); err != nil {
				var r *targetpolicy.Refused
				if errors.As(err, &r) {
					return &refusedDial{"resolved to an address the target policy refuses: " + r.Reason}
				}
				return &refusedDial{err.Error()}
			}
			return nil
		},
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            dialer.DialContext,
			DisableKeepAlives:      true,
			DisableCompression:     true,
			MaxResponseHeaderBytes: 16 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// follow keeps c.servers in step with the table: the probes of every server with a
// healthCheck, and what the table says of their health. It reads the store's deltas
// (a full pass over the table when a delta is not held).
func (c *checker) follow(ctx context.Context) {
	var seen uint64
	first := true
	for {
		t := c.st.Current()
		if first || t.Revision() != seen {
			var d store.Delta
			ok := false
			if !first && seen < t.Revision() {
				d, ok = c.st.Delta(seen, 1<<30)
			}
			if ok {
				for _, r := range d.Upserts {
					c.index(r.Name)
				}
				for _, name := range d.Removals {
					c.index(name)
				}
				seen = d.Revision
			} else {
				c.indexAll(t)
				seen = t.Revision()
			}
			first = false
			c.wake()
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.Changed():
		}
	}
}

// index sets the probes of one server name from the current table.
func (c *checker) index(name string) {
	sv, ok := c.st.Current().Get(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !ok {
		c.setProbes(name, nil)
		return
	}
	c.setProbes(name, &sv)
}

// indexAll sets every server's probes from t.
func (c *checker) indexAll(t *store.Table) {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := map[string]bool{}
	t.Ascend("", func(sv store.Server) bool {
		if sv.HealthCheck != nil {
			names[sv.Name] = true
			c.setProbes(sv.Name, &sv)
		}
		return true
	})
	for name := range c.servers {
		if !names[name] {
			c.setProbes(name, nil)
		}
	}
}

// setProbes makes name's probes those of sv (nil: none). A probe whose target and
// settings are unchanged keeps its count; a changed setting starts it afresh. c.mu
// is held.
func (c *checker) setProbes(name string, sv *store.Server) {
	old := c.servers[name]
	if sv == nil || sv.HealthCheck == nil {
		for _, p := range old {
			c.drop(p)
		}
		delete(c.servers, name)
		return
	}
	now := time.Now()
	ps := map[string]*probe{}
	for _, t := range sv.TargetList() {
		p := old[t.Address]
		if p == nil || p.hc != *sv.HealthCheck {
			if p != nil {
				c.drop(p)
			}
			p = &probe{name: name, address: t.Address, hc: *sv.HealthCheck, index: -1, down: t.Down}
			if c.leading {
				p.due = now.Add(jitter(p.hc))
				heap.Push(&c.queue, p)
			}
		}
		p.down = t.Down
		ps[t.Address] = p
	}
	for addr, p := range old {
		if ps[addr] == nil {
			c.drop(p)
		}
	}
	c.servers[name] = ps
}

// drop takes p out of the queue for good. c.mu is held.
func (c *checker) drop(p *probe) {
	p.gone = true
	if p.index >= 0 {
		heap.Remove(&c.queue, p.index)
	}
}

// downCount is how many targets of checked servers the table says are down.
func (c *checker) downCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ps := range c.servers {
		for _, p := range ps {
			if p.down {
				n++
			}
		}
	}
	return n
}
