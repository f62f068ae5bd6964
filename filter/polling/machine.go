// Package polling is the filter's poller as plain Go: when to poll the registrar, the
// request it sends, how each answer is classified, checked and applied to the route
// table in shared data, and how failures are retried (backoff), logged (once per kind)
// and counted; with it the poll lease (which VM polls) and the table's age watch. The
// poller runs in the sync root or, in router-only mode, in the router VM holding the
// lease; the proxy-wasm glue (filter/poller.go) only carries host calls in and out, so
// every decision here is tested natively with table tests.
//
// It arms no Go timer and starts no goroutine: the glue calls Tick on proxy_on_tick
// and Answer from the http-call callback, and every due time is a comparison with the
// host's clock (one armed Go timer makes the Go runtime call poll_oneoff at every GC,
// which crashes Envoy 1.33–1.37).
//
// The protocol is docs/sync-protocol.md, version 3 (version 2 with a target-set string
// per name): deltas applied in O(change), full tables in pages assembled before any
// router sees them, a lineage that tells an older answer of the same history from a
// new history. A version-1 answer (no "kind": the whole table, plain addresses) is
// still understood, so this poller works against registrars that ignore v=.
package polling

import (
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"switchyard/internal/contract"
	"switchyard/internal/pluginconfig"
)

// Host is what the Machine needs from the proxy besides shared data.
type Host interface {
	Store
	// Dispatch sends the poll (proxy_http_call to the registrar's cluster); an error
	// means the host refused it and no answer will come.
	Dispatch(headers [][2]string, timeoutMillis uint32) error
	// Log writes a line at info (warn false) or warn level.
	Log(warn bool, msg string)
	// Count adds one to switchyard.sync.success (ok) or switchyard.sync.failure.
	Count(ok bool)
	// Gauges sets switchyard.table.size and switchyard.table.revision.
	Gauges(size int, revision uint64)
}

// Identity is who the proxy says it is in every poll (docs/sync-protocol.md): sent as
// proxy=, cluster=, version=, each only when not empty.
type Identity struct {
	Proxy, Cluster, Version string
}

// Failure reports of Answer when the http call failed before a complete answer.
type CallFailure struct {
	// Status is the host's proxy_get_status message for the failed call ("reset" in
	// Envoy, for a refused connection, a reset and an answer over the buffer limit
	// alike), "" when unknown.
	Status string
}

// Reply is one answer of the registrar as the glue read it.
type Reply struct {
	Failed *CallFailure // not nil: no answer (headers count 0)
	Status string       // ":status"
	Body   []byte       // the whole body; the Machine keeps no view into it
}

// entry is the Machine's record of one name: what its route key holds, and, while a
// full table is assembled, what the table being assembled gives it. Keeping the
// assembly in the live table's own entries (instead of a second map) is what bounds a
// full load to the table plus one page.
type entry struct {
	target  string // what the route key holds; "" removed; uncertain: unknown after a failed write
	pending string // the assembled table's target when it differs (valid when mark is the assembly's)
	mark    uint32 // the assembly that last saw the name in a page
	indexed bool   // the index in shared data lists the name
}

// uncertain is a target no answer holds: a name whose route key an apply that then
// failed may have changed. The next full table rewrites (or empties) it.
const uncertain = "\x00"

// assembly is a full table being received page by page.
type assembly struct {
	lineage  string
	revision uint64
	start    string // the first name of the page asked for next
	mark     uint32
	pages    int
	received int // names received
}

// Machine is the poller's state. Create it with New, then call Tick on every host tick
// and Answer with every reply to a poll it sent.
type Machine struct {
	cfg     pluginconfig.RegistrarConfig
	id      Identity
	host    Host
	backoff *Backoff

	live     map[string]entry // every name the index lists
	size     int              // names in live with a target
	revision uint64
	lineage  string
	loaded   bool
	index    index
	needFull bool // ask for a full table: after a refused delta or a failed write

	asm  *assembly
	mark uint32

	inFlight bool
	sentAt   int64 // host clock (ns) when the in-flight poll was sent
	dueAt    int64 // host clock (ns) when the next poll may be sent
	state    string

	polledFailed bool // a write of PolledKey failed (logged once)

	// protocol is the version asked (v=): 3, or 2 once a registrar from before target
	// sets refused version 3 (its routes are then plain addresses).
	protocol string
}

// New starts from what shared data already holds: when only the poller's VM was replaced
// (the router VMs keep the vm_id's store alive), the table an earlier poller wrote is
// still there and still served. The new poller adopts it, so its first poll asks only
// for what changed since, and names removed while no poller ran are emptied by the first
// update. now seeds the backoff's jitter.
func New(cfg pluginconfig.RegistrarConfig, id Identity, host Host, now int64) *Machine {
	m := &Machine{cfg: cfg, id: id, host: host, backoff: NewBackoff(uint64(now)), protocol: contract.ProtocolV3}
	if cfg.TokenEnv != "" {
		m.cfg.Token = os.Getenv(cfg.TokenEnv)
		if m.cfg.Token == "" {
			host.Log(true, "sync: registrar.token_env names "+cfg.TokenEnv+", which the VM's environment does not hold (or holds empty): "+
				"polling without a token. Give it to the VM: Envoy vm_config.environment_variables (host_env_keys or key_values), "+
				"Istio WasmPlugin vmConfig.env, Envoy Gateway env.hostKeys")
		}
	}
	rec := Recover(host)
	m.live = make(map[string]entry, len(rec.Live))
	for name, target := range rec.Live {
		m.live[name] = entry{target: target, indexed: true}
		if target != "" {
			m.size++
		}
	}
	m.revision, m.lineage, m.loaded, m.index, m.needFull = rec.Revision, rec.Lineage, rec.Loaded, rec.index, rec.Dirty
	if rec.Dirty {
		m.host.Log(true, "sync: the previous sync died while writing an update; asking the registrar for a full table to repair it")
	}
	if m.loaded {
		m.host.Gauges(m.size, m.revision)
		m.host.Log(false, "sync: resuming the table already in shared data at revision "+
			strconv.FormatUint(m.revision, 10)+" ("+strconv.Itoa(m.size)+" servers)")
	}
	return m
}

// Revision, Lineage, Loaded and Size describe the live table.
func (m *Machine) Revision() uint64 { return m.revision }
func (m *Machine) Lineage() string  { return m.lineage }
func (m *Machine) Loaded() bool     { return m.loaded }
func (m *Machine) Size() int        { return m.size }

// Assembling reports whether a full table is being received in pages.
func (m *Machine) Assembling() bool { return m.asm != nil }

// DueAt is the host time (ns) at which the next poll may be sent when none is in flight.
func (m *Machine) DueAt() int64 { return m.dueAt }

// TimeoutMillis is the poll's timeout: the registrar holds the poll for wait_seconds,
// so the timeout must be longer than that.
func (m *Machine) TimeoutMillis() uint32 {
	return uint32(m.cfg.WaitSeconds+contract.PollTimeoutMarginSeconds) * 1000
}

// Tick sends the poll when it is due, and gives up a poll the host never answered.
func (m *Machine) Tick(now int64) {
	if m.inFlight {
		// The host times the call out itself and calls back; this is a guard
		// against a host that never answers, so the poller cannot stall for good.
		if now-m.sentAt > (int64(m.TimeoutMillis())+contract.PollLostMarginSeconds*1000)*1e6 {
			m.inFlight = false
			m.fail(now, "no_answer", "the poll got no answer, not even a timeout, within "+
				strconv.Itoa(int(m.TimeoutMillis()/1000)+contract.PollLostMarginSeconds)+" s")
		}
		return
	}
	if now >= m.dueAt {
		m.poll(now)
	}
}

// Path gives the :path of the next poll (docs/sync-protocol.md, version 3): the next
// page while a full table is assembled; else after= and lineage= of the live table
// (none before the first table or when a full table is needed, which the registrar
// answers at once with a full table); wait=; and the proxy's identity.
func (m *Machine) Path() string {
	var b strings.Builder
	b.WriteString(m.cfg.Path)
	b.WriteString("?" + contract.QueryProtocol + "=" + m.protocol)
	if m.asm != nil {
		b.WriteString("&" + contract.QuerySnapshot + "=" + strconv.FormatUint(m.asm.revision, 10) +
			"&" + contract.QueryStart + "=" + url.QueryEscape(m.asm.start))
	} else {
		if m.loaded && !m.needFull {
			b.WriteString("&" + contract.QueryAfter + "=" + strconv.FormatUint(m.revision, 10))
			if m.lineage != "" {
				b.WriteString("&" + contract.QueryLineage + "=" + url.QueryEscape(m.lineage))
			}
		}
		b.WriteString("&" + contract.QueryWait + "=" + strconv.Itoa(m.cfg.WaitSeconds))
	}
	for _, p := range [...][2]string{{contract.QueryProxy, m.id.Proxy}, {contract.QueryCluster, m.id.Cluster}, {contract.QueryVersion, m.id.Version}} {
		if p[1] != "" {
			b.WriteString("&" + p[0] + "=" + url.QueryEscape(p[1]))
		}
	}
	return b.String()
}

// Headers gives the poll's request headers.
func (m *Machine) Headers() [][2]string {
	h := [][2]string{
		{":method", "GET"},
		{":path", m.Path()},
		{":authority", m.cfg.Authority},
		{"accept", "application/json"},
	}
	if m.cfg.Token != "" {
		h = append(h, [2]string{"authorization", "Bearer " + m.cfg.Token})
	}
	return h
}

func (m *Machine) poll(now int64) {
	if err := m.host.Dispatch(m.Headers(), m.TimeoutMillis()); err != nil {
		// Envoy refuses an http call to a cluster it does not have at once. The line
		// names the cluster and the names each proxy gives the registrar's cluster, since
		// they differ by platform and setting.
		m.fail(now, "dispatch", "the proxy refused the poll to cluster '"+m.cfg.Cluster+"' ("+err.Error()+
			"); check registrar.cluster names a cluster this proxy has: Envoy Gateway names a route rule's "+
			"httproute/<namespace>/<route>/rule/<index>, or service/<namespace>/<service>/<port>/http with "+
			"EnvoyProxy mergeBackends; Istio outbound|<port>||<service FQDN>")
		return
	}
	m.inFlight = true
	m.sentAt = now
}

// Answer handles the reply to the poll in flight and, when it went well, sends the
// next poll at once (the registrar holds it until something changes).
func (m *Machine) Answer(now int64, r Reply) {
	m.inFlight = false
	if r.Failed != nil {
		st := ""
		if r.Failed.Status != "" {
			st = " (host status: " + r.Failed.Status + ")"
		}
		// Envoy reports a refused connection, a reset and an answer over its buffer
		// limit for http calls (32 MiB by default) the same way, so the line names all
		// three.
		m.fail(now, "unreachable", "the poll to cluster '"+m.cfg.Cluster+"' failed without an answer"+st+": the registrar could not be reached, "+
			"the connection was reset or timed out, or the answer was larger than the proxy's buffer limit for http calls "+
			"(Envoy's default is 32 MiB; a registrar that serves sync protocol 2 pages its answers under it)")
		return
	}
	switch r.Status {
	case "304":
		if m.asm != nil {
			m.refusePage(now, "the registrar answered 304 to a page request")
			return
		}
		m.succeed(now)
		m.poll(now)
	case "200":
		a, err := ParseAnswer(r.Body)
		if err != nil {
			if m.asm != nil {
				m.refusePage(now, "the registrar sent an invalid page of the route table ("+err.Error()+")")
				return
			}
			m.fail(now, "invalid_answer", "the registrar sent an invalid route table ("+err.Error()+")")
			return
		}
		if a.Kind == Delta {
			m.onDelta(now, a)
		} else {
			m.onPage(now, a)
		}
	case "410":
		// snapshot_gone: the registrar no longer serves the pages of that revision.
		m.asm = nil
		m.fail(now, contract.SnapshotGone, "the registrar no longer serves the full table being received page by page "+
			"(410 "+contract.SnapshotGone+"); starting the full table over")
	case "401", "403":
		m.fail(now, "http_"+r.Status, "the registrar refused the poll with HTTP "+r.Status+"; check registrar.token")
	case "400":
		if m.protocol == contract.ProtocolV3 && strings.Contains(string(r.Body), `"`+contract.QueryProtocol+`: `) {
			// A registrar from before target sets names v= as what it refuses: ask it
			// version 2, which it serves (one target per name).
			m.protocol = contract.ProtocolV2
			m.host.Log(true, "sync: the registrar does not serve sync protocol 3 (target sets); asking version 2, "+
				"so every name routes to its first active target until the registrar is upgraded")
			m.poll(now)
			return
		}
		fallthrough
	default:
		msg := "the registrar answered HTTP " + r.Status + " instead of 200 or 304"
		if len(r.Body) > 0 {
			msg += " (" + quote(string(r.Body)) + ")"
		}
		m.fail(now, "http_"+r.Status, msg)
	}
}

// refusePage gives up the full table being assembled: nothing of it was written.
func (m *Machine) refusePage(now int64, msg string) {
	m.asm = nil
	m.needFull = true
	m.fail(now, "invalid_page", msg+"; starting the full table over")
}

func (m *Machine) onDelta(now int64, a Answer) {
	if m.asm != nil {
		m.refusePage(now, "the registrar sent a delta to a page request")
		return
	}
	var why string
	switch {
	case !m.loaded:
		why = "no table is loaded"
	case a.Lineage != m.lineage:
		why = "it is of lineage " + a.Lineage + ", the live table of " + lineageText(m.lineage)
	case a.From != m.revision:
		why = "it starts at revision " + strconv.FormatUint(a.From, 10) + ", the live table is at " + strconv.FormatUint(m.revision, 10)
	}
	if why != "" {
		m.needFull = true
		m.fail(now, "delta_refused", "refused a delta to revision "+strconv.FormatUint(a.Revision, 10)+" because "+why+
			"; asking for a full table")
		return
	}
	added, changed, removed, err := m.applyDelta(a)
	if err != nil {
		m.needFull = true
		m.fail(now, "shared_data", "writing the route table to shared data failed: "+err.Error()+"; asking for a full table")
		return
	}
	m.host.Log(false, "sync: table at revision "+strconv.FormatUint(m.revision, 10)+": "+strconv.Itoa(m.size)+" servers ("+
		strconv.Itoa(added)+" added, "+strconv.Itoa(changed)+" changed, "+strconv.Itoa(removed)+" removed) from a delta")
	m.succeed(now)
	m.poll(now)
}

func (m *Machine) onPage(now int64, a Answer) {
	if m.asm == nil {
		// The first (or only) page of a full table.
		if m.loaded && a.Lineage == m.lineage && a.Revision < m.revision {
			m.fail(now, "stale", "ignored the registrar's table at revision "+strconv.FormatUint(a.Revision, 10)+
				", older than the live revision "+strconv.FormatUint(m.revision, 10)+" of the same lineage")
			return
		}
		m.mark++
		if len(m.live) == 0 {
			// A first table: size the map once rather than through every doubling,
			// whose old tables would linger as garbage the VM's memory never returns.
			m.live = make(map[string]entry, len(a.Routes))
		}
		m.asm = &assembly{lineage: a.Lineage, revision: a.Revision, mark: m.mark}
	} else if a.V1 || a.Lineage != m.asm.lineage || a.Revision != m.asm.revision {
		m.refusePage(now, "a page of the full table is of revision "+strconv.FormatUint(a.Revision, 10)+" lineage "+lineageText(a.Lineage)+
			", the pages before of revision "+strconv.FormatUint(m.asm.revision, 10)+" lineage "+lineageText(m.asm.lineage))
		return
	} else if len(a.Routes) > 0 && a.Routes[0][0] < m.asm.start {
		m.refusePage(now, "a page of the full table starts at "+a.Routes[0][0]+", before the name "+m.asm.start+" it was asked from")
		return
	}
	asm := m.asm
	for _, r := range a.Routes {
		name, target := r[0], r[1]
		e, ok := m.live[name]
		if !ok {
			name = strings.Clone(name) // the key outlives the body
		}
		e.mark, e.pending = asm.mark, ""
		if !e.indexed || e.target != target {
			e.pending = strings.Clone(target)
		}
		m.live[name] = e
	}
	asm.pages++
	asm.received += len(a.Routes)
	if a.Next != "" {
		asm.start = strings.Clone(a.Next)
		m.succeed(now)
		m.poll(now)
		return
	}
	m.asm = nil
	if m.loaded && asm.lineage != m.lineage {
		m.host.Log(true, "sync: the registrar's history changed (lineage "+lineageText(m.lineage)+" at revision "+
			strconv.FormatUint(m.revision, 10)+" → lineage "+lineageText(asm.lineage)+" at revision "+
			strconv.FormatUint(asm.revision, 10)+"): its data was replaced or restored; taking its full table")
	}
	added, changed, removed, err := m.applyFull(asm)
	if err != nil {
		m.needFull = true
		m.fail(now, "shared_data", "writing the route table to shared data failed: "+err.Error()+"; asking for a full table")
		return
	}
	m.needFull = false
	pages := ""
	if asm.pages > 1 {
		pages = " in " + strconv.Itoa(asm.pages) + " pages"
	}
	m.host.Log(false, "sync: table at revision "+strconv.FormatUint(m.revision, 10)+": "+strconv.Itoa(m.size)+" servers ("+
		strconv.Itoa(added)+" added, "+strconv.Itoa(changed)+" changed, "+strconv.Itoa(removed)+" removed) from a full table"+pages)
	m.succeed(now)
	m.poll(now)
}

// setRoute writes one route key, marking the name uncertain first so that after an
// error the live table still says what shared data may hold.
func (m *Machine) setRoute(name, target string) error {
	e := m.live[name]
	had := e.target != "" && e.target != uncertain
	e.target = uncertain
	m.live[name] = e
	if had {
		m.size--
	}
	if err := m.host.Set(routeKeyView(name), target); err != nil {
		return err
	}
	e.target = target
	m.live[name] = e
	if target != "" {
		m.size++
	}
	return nil
}

// applyDelta writes a checked delta: names new to the index are listed first, then
// the upserts and removals, then the table and revision keys.
func (m *Machine) applyDelta(a Answer) (added, changed, removed int, err error) {
	if err = m.markDirty(); err != nil {
		return
	}
	var fresh []string
	for _, r := range a.Routes {
		if e, ok := m.live[r[0]]; !ok || !e.indexed {
			fresh = append(fresh, strings.Clone(r[0]))
		}
	}
	if err = m.index.appendNames(m.host, slices.Values(fresh)); err != nil {
		return
	}
	for _, name := range fresh {
		e := m.live[name]
		e.indexed = true
		m.live[name] = e
	}
	for _, r := range a.Routes {
		name, target := r[0], r[1]
		e := m.live[name]
		switch {
		case e.target == target:
			continue
		case e.target == "":
			added++
		default:
			changed++
		}
		if err = m.setRoute(name, strings.Clone(target)); err != nil {
			return
		}
	}
	for _, name := range a.Removals {
		e, ok := m.live[name]
		if !ok || e.target == "" {
			continue
		}
		removed++
		if err = m.setRoute(name, ""); err != nil {
			return
		}
	}
	if err = m.commit(a.Lineage, a.Revision); err != nil {
		return
	}
	if m.index.listed > 2*m.size+compactSlack || m.index.legacy {
		err = m.compact()
	}
	return
}

// compact rewrites the index to the live names and forgets the removed ones, which it
// no longer lists (a name that comes back is listed again before it is written).
func (m *Machine) compact() error {
	if err := m.index.compact(m.host, m.liveNames); err != nil {
		return err
	}
	for name, e := range m.live {
		if e.target == "" {
			delete(m.live, name)
		}
	}
	return nil
}

// applyFull writes an assembled full table: new names listed, changes written, every
// name the table does not hold emptied, the table and revision keys, then the index
// compacted to the live names when it lists others.
func (m *Machine) applyFull(asm *assembly) (added, changed, removed int, err error) {
	if err = m.markDirty(); err != nil {
		return
	}
	fresh := func(yield func(string) bool) {
		for name, e := range m.live {
			if e.mark == asm.mark && !e.indexed && !yield(name) {
				return
			}
		}
	}
	for name, e := range m.live {
		if e.mark != asm.mark && !e.indexed {
			delete(m.live, name) // left over from an abandoned assembly
		}
	}
	if err = m.index.appendNames(m.host, fresh); err != nil {
		return
	}
	for name, e := range m.live {
		if e.mark == asm.mark && !e.indexed {
			e.indexed = true
			m.live[name] = e
		}
	}
	for name, e := range m.live {
		if e.mark == asm.mark {
			if e.pending == "" {
				continue
			}
			if e.target == "" {
				added++
			} else {
				changed++
			}
			target := e.pending
			e.pending = ""
			m.live[name] = e
			if err = m.setRoute(name, target); err != nil {
				return
			}
			continue
		}
		if e.target == "" {
			continue
		}
		if e.target != uncertain {
			removed++
		}
		if err = m.setRoute(name, ""); err != nil {
			return
		}
	}
	if err = m.commit(asm.lineage, asm.revision); err != nil {
		return
	}
	if m.index.listed > m.size || m.index.legacy {
		err = m.compact() // the index lists removed names: list only the table's
	}
	return
}

// markDirty tells a poller that may replace this one that an update is being written.
func (m *Machine) markDirty() error {
	if !m.loaded {
		return nil // no table key yet: a new poller finds no table and asks for a full one
	}
	return m.host.Set(StateKey, stateValue(m.revision, m.lineage, true))
}

// commit writes the table key, then the revision key (the one routers read) last.
func (m *Machine) commit(lineage string, revision uint64) error {
	rev := strconv.FormatUint(revision, 10)
	if err := m.host.Set(StateKey, stateValue(revision, lineage, false)); err != nil {
		return err
	}
	if err := m.host.Set(RevisionKey, rev); err != nil {
		return err
	}
	m.revision, m.lineage, m.loaded = revision, strings.Clone(lineage), true
	m.host.Gauges(m.size, m.revision)
	return nil
}

// liveNames yields the names with a target (an uncertain one included: its route key
// may hold one).
func (m *Machine) liveNames(yield func(string) bool) {
	for name, e := range m.live {
		if e.target != "" && !yield(name) {
			return
		}
	}
}

// succeed counts a poll answered and applied (or unchanged) and records its host
// time in PolledKey, from which routers tell the table's age (a poller that died, or
// a registrar that stopped answering, shows as a growing age).
func (m *Machine) succeed(now int64) {
	m.host.Count(true)
	if err := m.host.Set(PolledKey, strconv.FormatInt(now, 10)); err != nil && !m.polledFailed {
		m.polledFailed = true
		m.host.Log(true, "sync: writing "+PolledKey+" to shared data failed: "+err.Error()+"; routers will report the table as older than it is")
	}
	if m.state != "ok" && m.state != "" {
		m.host.Log(false, "sync: the registrar answers again after "+strconv.Itoa(m.backoff.Failures())+" failed polls")
	}
	m.state = "ok"
	m.backoff.Reset()
}

// fail keeps the table, schedules a retry with backoff and logs once per change of
// kind, not once per failure: a registrar that is down for an hour gives one line,
// not thousands.
func (m *Machine) fail(now int64, kind, msg string) {
	m.host.Count(false)
	delay := m.backoff.Next()
	m.dueAt = now + delay*1e6
	if kind != m.state {
		table := "no table is loaded yet, so routed paths answer 503"
		if m.loaded {
			table = "keeping the table at revision " + strconv.FormatUint(m.revision, 10) + " (" + strconv.Itoa(m.size) + " servers)"
		}
		m.host.Log(true, "sync: "+msg+"; "+table+"; retrying with backoff from "+strconv.FormatInt(delay, 10)+" ms")
		m.state = kind
	}
}

func lineageText(l string) string {
	if l == "" {
		return "(none: a version-1 registrar)"
	}
	return l
}
