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
// per name): deltas applied in O(change), full tables in pages streamed into a
// generation no router reads and switched whole (layout.go), a lineage that tells an
// older answer of the same history from a new history. A version-1 answer (no "kind":
// the whole table, plain addresses) is still understood, so this poller works against
// registrars that ignore v=.
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

// load is a full table being streamed page by page into a generation no router reads.
type load struct {
	g        gen
	lineage  string
	revision uint64
	start    string // the first name of the page asked for next
	pages    int
	received int // names written
	ix       index
}

// Machine is the poller's state. Create it with New, then call Tick on every host tick
// and Answer with every reply to a poll it sent. It holds no copy of the table: what
// it needs of it is read from shared data (layout.go), so its memory is one page.
type Machine struct {
	cfg     pluginconfig.RegistrarConfig
	id      Identity
	host    Host
	backoff *Backoff

	cur      gen // the generation routers read; 0 before the first table
	ix       index
	size     int // names with a target in cur
	revision uint64
	lineage  string
	loaded   bool
	needFull bool // ask for a full table: after a refused delta, a failed write, a sparse index

	load *load

	retired  gen   // the generation being emptied, 0 none
	cleanAt  int64 // host time (ns) from which it may be emptied
	cleanSeg int   // the next of its index segments to empty
	cleaning []string
	cleanErr bool // a write of the emptying failed (logged once)

	inFlight bool
	sentAt   int64 // host clock (ns) when the in-flight poll was sent
	dueAt    int64 // host clock (ns) when the next poll may be sent
	state    string
	waitLog  bool // "waiting for the emptying" was logged for the current wait

	polledFailed bool // a write of PolledKey failed (logged once)

	pending [][2]string // writePage's names of one index segment, reused

	// protocol is the version asked (v=): 3, or 2 once a registrar from before target
	// sets refused version 3 (its routes are then plain addresses).
	protocol string
}

// New starts from what shared data already holds (layout.go): when only the poller's
// VM was replaced (the router VMs keep the vm_id's store alive), the table an earlier
// poller wrote is still there and still served. The new poller adopts it, so its first
// poll asks only for what changed since; it resumes a full table that was being
// streamed, finishes emptying a retired generation, and migrates a table of the first
// layout. now seeds the backoff's jitter and starts the grace of a retired generation.
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
	m.adopt(now)
	return m
}

// adopt takes the table state from shared data (see New).
func (m *Machine) adopt(now int64) {
	host := m.host
	m.cur, m.ix, m.size, m.revision, m.lineage, m.loaded, m.needFull, m.load = 0, index{}, 0, 0, "", false, false, nil
	cur, _ := host.Get(CurrentKey)
	m.cur = genOf(string(cur))
	switch m.cur {
	case 'a', 'b':
		t, ok := readGenRecord(host, m.cur)
		if !ok || t.phase != genLive {
			m.host.Log(true, "sync: the state key of the current generation "+m.cur.String()+" is not valid; asking the registrar for a full table")
			t = genRecord{phase: genLive}
			m.needFull = true
		}
		m.revision, m.lineage, m.size, m.loaded = t.revision, t.lineage, t.count, true
		m.ix = readIndex(host, m.cur, t.listed)
		if t.dirty {
			m.needFull = true
			m.host.Log(true, "sync: the previous sync died while writing an update; asking the registrar for a full table to repair it")
		}
	case 0:
		if lt := readLegacyTable(host); lt.found {
			// A table of the first layout: routers of this filter read it at once.
			if err := host.Set(CurrentKey, LegacyRouteKeyPrefix); err != nil {
				m.host.Log(true, "sync: pointing routers at the table of the first layout failed ("+err.Error()+"); they answer 503 until a full table is loaded")
			} else {
				m.cur = legacyGen
			}
		}
	}
	if m.cur == legacyGen {
		lt := readLegacyTable(host)
		m.revision, m.lineage, m.loaded, m.needFull = lt.revision, lt.lineage, true, true
		m.size = m.countLegacy()
		m.host.Log(false, "sync: found a table of the first shared-data layout; routers read it until the full table asked for replaces it")
	}
	for _, g := range [...]gen{'a', 'b'} {
		if g == m.cur {
			continue
		}
		t, ok := readGenRecord(host, g)
		if ok && t.phase == genLoading {
			m.load = &load{g: g, lineage: t.lineage, revision: t.revision, start: t.next, received: t.count,
				ix: readIndex(host, g, t.count)}
			m.host.Log(false, "sync: resuming the full table at revision "+strconv.FormatUint(t.revision, 10)+
				" that the previous sync was loading ("+strconv.Itoa(t.count)+" servers so far)")
		}
	}
	m.findRetired(now + RetireGraceSeconds*1e9)
	if m.loaded {
		m.host.Gauges(m.size, m.revision)
		m.host.Log(false, "sync: resuming the table already in shared data at revision "+
			strconv.FormatUint(m.revision, 10)+" ("+strconv.Itoa(m.size)+" servers)")
	}
}

// stillCurrent reports whether routers read the generation this Machine takes for
// current. Another poller may have switched it: a sync starting beside a router that
// held the poll lease until the sync took it, and went on for the rest of its tick.
// The Machine then adopts what shared data holds before it writes anything.
func (m *Machine) stillCurrent(now int64) bool {
	v, ok := m.host.Get(CurrentKey)
	if ok == (m.cur != 0) && (!ok || string(v) == m.cur.routePrefix()) {
		return true
	}
	m.host.Log(true, "sync: another poller switched the table in shared data; taking it over from there")
	m.adopt(now)
	return false
}

// findRetired looks for a generation to empty: one that is neither current nor
// loading and not clean, or the first layout's keys once routers no longer read them.
// It may be emptied from host time at on.
func (m *Machine) findRetired(at int64) {
	m.retired, m.cleanSeg, m.cleaning = 0, 0, nil
	for _, g := range [...]gen{'a', 'b'} {
		if g == m.cur || m.load != nil && g == m.load.g {
			continue
		}
		if t, ok := readGenRecord(m.host, g); !ok || t.phase != genClean {
			m.retire(g, at)
			return
		}
	}
	if m.cur != legacyGen && legacyLeft(m.host) {
		m.retire(legacyGen, at)
	}
}

// retire schedules g's emptying from host time at.
func (m *Machine) retire(g gen, at int64) {
	m.retired, m.cleanAt, m.cleanSeg, m.cleanErr = g, at, 0, false
	if g == legacyGen {
		m.cleaning = legacySegmentKeys(m.host)
		return
	}
	m.cleaning = m.cleaning[:0]
	if v, ok := m.host.Get(g.namesKey()); ok {
		n, _ := strconv.Atoi(string(v))
		for i := 0; i < n; i++ {
			m.cleaning = append(m.cleaning, g.segmentKey(i))
		}
	}
}

// countLegacy counts the names with a target in the first layout's table.
func (m *Machine) countLegacy() int {
	n := 0
	for _, k := range legacySegmentKeys(m.host) {
		seg, _ := m.host.Get(k)
		for name := range segmentNames(string(seg)) {
			if v, _ := m.host.Peek(routeKeyView(legacyGen, name)); len(v) > 0 {
				n++
			}
		}
	}
	return n
}

// clean empties the retired generation, at most CleanBudget route keys per call, once
// its grace is over.
func (m *Machine) clean(now int64) {
	if m.retired == 0 || now < m.cleanAt {
		return
	}
	budget := CleanBudget
	for m.cleanSeg < len(m.cleaning) && budget > 0 {
		key := m.cleaning[m.cleanSeg]
		seg, _ := m.host.Get(key)
		for name := range segmentNames(string(seg)) {
			budget--
			if err := m.host.Set(routeKeyView(m.retired, name), ""); err != nil {
				m.cleanFailed(err)
				return
			}
		}
		if len(seg) > 0 {
			if err := m.host.Set(key, ""); err != nil {
				m.cleanFailed(err)
				return
			}
		}
		m.cleanSeg++
	}
	if m.cleanSeg < len(m.cleaning) {
		return
	}
	var last []string
	if m.retired == legacyGen {
		last = []string{LegacyHeadKey, LegacyStateKey}
	} else {
		last = []string{m.retired.namesKey(), m.retired.stateKey()} // the state key last: "clean"
	}
	for _, k := range last {
		if err := m.host.Set(k, ""); err != nil {
			m.cleanFailed(err)
			return
		}
	}
	m.findRetired(now)
	if m.retired == 0 && m.waitLog {
		m.waitLog = false
		m.host.Log(false, "sync: the previous table is emptied; asking for the full table")
	}
}

func (m *Machine) cleanFailed(err error) {
	if !m.cleanErr {
		m.cleanErr = true
		m.host.Log(true, "sync: emptying generation "+m.retired.String()+" of the table in shared data failed ("+err.Error()+"); retrying every tick")
	}
}

// Revision, Lineage, Loaded and Size describe the live table.
func (m *Machine) Revision() uint64 { return m.revision }
func (m *Machine) Lineage() string  { return m.lineage }
func (m *Machine) Loaded() bool     { return m.loaded }
func (m *Machine) Size() int        { return m.size }

// Assembling reports whether a full table is being received in pages.
func (m *Machine) Assembling() bool { return m.load != nil }

// Emptying reports whether a generation that is no longer current is still to be
// emptied (a full table waits for it).
func (m *Machine) Emptying() bool { return m.retired != 0 }

// DueAt is the host time (ns) at which the next poll may be sent when none is in flight.
func (m *Machine) DueAt() int64 { return m.dueAt }

// TimeoutMillis is the poll's timeout: the registrar holds the poll for wait_seconds,
// so the timeout must be longer than that.
func (m *Machine) TimeoutMillis() uint32 {
	return uint32(m.cfg.WaitSeconds+contract.PollTimeoutMarginSeconds) * 1000
}

// Tick empties a retired generation by a chunk, sends the poll when it is due, and
// gives up a poll the host never answered.
func (m *Machine) Tick(now int64) {
	if m.retired != 0 && now >= m.cleanAt && m.stillCurrent(now) {
		m.clean(now)
	}
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
	if m.load != nil {
		b.WriteString("&" + contract.QuerySnapshot + "=" + strconv.FormatUint(m.load.revision, 10) +
			"&" + contract.QueryStart + "=" + url.QueryEscape(m.load.start))
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

// wantsFull reports whether the next poll asks for a full table.
func (m *Machine) wantsFull() bool { return m.load == nil && (!m.loaded || m.needFull) }

func (m *Machine) poll(now int64) {
	if m.wantsFull() && m.retired != 0 {
		// A full table is streamed into a clean generation only: wait for the
		// emptying (Tick polls when it is done).
		if !m.waitLog {
			m.waitLog = true
			m.host.Log(false, "sync: a full table is wanted; waiting until generation "+m.retired.String()+
				" of the table, no longer current, is emptied")
		}
		return
	}
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
		if m.load != nil {
			m.refusePage(now, "the registrar answered 304 to a page request")
			return
		}
		m.succeed(now)
		m.poll(now)
	case "200":
		a, err := ParseAnswer(r.Body)
		if err != nil {
			if m.load != nil {
				m.refusePage(now, "the registrar sent an invalid page of the route table ("+err.Error()+")")
				return
			}
			m.fail(now, "invalid_answer", "the registrar sent an invalid route table ("+err.Error()+")")
			return
		}
		if !m.stillCurrent(now) {
			m.fail(now, "taken_over", "the answer was for a table another poller has since replaced; asking again")
			return
		}
		if a.Kind == Delta {
			m.onDelta(now, a)
		} else {
			m.onPage(now, a)
		}
	case "410":
		// snapshot_gone: the registrar no longer serves the pages of that revision.
		m.abandon(now)
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

// abandon gives up the full table being streamed: routers never read its generation,
// which is emptied at once (no grace) before a full table starts over.
func (m *Machine) abandon(now int64) {
	if m.load == nil {
		return
	}
	g := m.load.g
	m.load = nil
	m.needFull = true
	m.host.Set(g.stateKey(), genRecord{phase: genRetired}.String()) // a poller that replaces this one empties it too
	m.retire(g, now)
}

// refusePage gives up the full table being streamed: routers never saw any of it.
func (m *Machine) refusePage(now int64, msg string) {
	m.abandon(now)
	m.fail(now, "invalid_page", msg+"; starting the full table over")
}

func (m *Machine) onDelta(now int64, a Answer) {
	if m.load != nil {
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
	case m.cur == legacyGen:
		why = "the table is still the first layout's, which is replaced by a full table"
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
	if m.ix.listed > 2*m.size+compactSlack {
		// Removed names stay listed until the generation is replaced: a full table
		// replaces it with one that lists only live names.
		m.needFull = true
		m.host.Log(false, "sync: the table's index lists "+strconv.Itoa(m.ix.listed)+" names for "+strconv.Itoa(m.size)+
			" servers; asking for a full table to replace it with a compact one")
	}
	m.succeed(now)
	m.poll(now)
}

func (m *Machine) onPage(now int64, a Answer) {
	if m.load == nil {
		// The first (or only) page of a full table.
		if m.loaded && a.Lineage == m.lineage && a.Revision < m.revision {
			m.fail(now, "stale", "ignored the registrar's table at revision "+strconv.FormatUint(a.Revision, 10)+
				", older than the live revision "+strconv.FormatUint(m.revision, 10)+" of the same lineage")
			return
		}
		if m.retired != 0 {
			// The registrar sent a full table to a delta poll (a new lineage, a proxy
			// behind its history) while the other generation is still being emptied.
			m.needFull = true
			m.succeed(now)
			m.poll(now) // waits for the emptying
			return
		}
		g := m.cur.other()
		m.load = &load{g: g, lineage: strings.Clone(a.Lineage), revision: a.Revision, ix: index{g: g}}
		// The marker goes first: a poller that replaces this one finds the generation
		// loading, never taken for clean while it holds keys.
		if err := m.host.Set(g.stateKey(), m.loadRecord().String()); err != nil {
			m.load = nil
			m.needFull = true
			m.fail(now, "shared_data", "writing the route table to shared data failed: "+err.Error()+"; asking for a full table")
			return
		}
	} else if a.V1 || a.Lineage != m.load.lineage || a.Revision != m.load.revision {
		m.refusePage(now, "a page of the full table is of revision "+strconv.FormatUint(a.Revision, 10)+" lineage "+lineageText(a.Lineage)+
			", the pages before of revision "+strconv.FormatUint(m.load.revision, 10)+" lineage "+lineageText(m.load.lineage))
		return
	} else if a.Routes.Len() > 0 && a.Routes.First() < m.load.start {
		m.refusePage(now, "a page of the full table starts at "+a.Routes.First()+", before the name "+m.load.start+" it was asked from")
		return
	}
	ld := m.load
	if err := m.writePage(a); err != nil {
		m.abandon(now)
		m.fail(now, "shared_data", "writing the route table to shared data failed: "+err.Error()+"; asking for a full table")
		return
	}
	if a.Next != "" {
		ld.start = strings.Clone(a.Next)
		if err := m.host.Set(ld.g.stateKey(), m.loadRecord().String()); err != nil {
			m.abandon(now)
			m.fail(now, "shared_data", "writing the route table to shared data failed: "+err.Error()+"; asking for a full table")
			return
		}
		m.succeed(now)
		m.poll(now)
		return
	}
	if m.loaded && ld.lineage != m.lineage {
		m.host.Log(true, "sync: the registrar's history changed (lineage "+lineageText(m.lineage)+" at revision "+
			strconv.FormatUint(m.revision, 10)+" → lineage "+lineageText(ld.lineage)+" at revision "+
			strconv.FormatUint(ld.revision, 10)+"): its data was replaced or restored; taking its full table")
	}
	oldSize, hadTable := m.size, m.loaded
	if err := m.switchTo(now, ld); err != nil {
		m.abandon(now)
		m.fail(now, "shared_data", "writing the route table to shared data failed: "+err.Error()+"; asking for a full table")
		return
	}
	m.needFull = false
	pages, before := "", ""
	if ld.pages > 1 {
		pages = " in " + strconv.Itoa(ld.pages) + " pages"
	}
	if hadTable {
		before = " (" + strconv.Itoa(oldSize) + " before)"
	}
	m.host.Log(false, "sync: table at revision "+strconv.FormatUint(m.revision, 10)+": "+strconv.Itoa(m.size)+" servers"+
		before+" from a full table"+pages)
	m.succeed(now)
	m.poll(now)
}

// loadTable is the state key of the generation being loaded.
func (m *Machine) loadRecord() genRecord {
	return genRecord{phase: genLoading, revision: m.load.revision, lineage: m.load.lineage, count: m.load.received, next: m.load.start}
}

// writePage writes one page into the loading generation: names are listed in its
// index a segment at a time, and each segment is written before the route keys of the
// names it lists (a poller that dies between the two leaves keys its successor can
// find and empty). One host call per name: the current generation is not read (a
// comparison for the log line would double the calls and make the host copy each old
// value into the VM), and the page's JSON is read once more, not once per pass.
func (m *Machine) writePage(a Answer) error {
	ld := m.load
	l := ld.ix.lister(m.host)
	pending := m.pending[:0]
	write := func() error {
		if err := l.flush(); err != nil {
			return err
		}
		for _, p := range pending {
			if err := m.host.Set(routeKeyView(ld.g, p[0]), p[1]); err != nil {
				return err
			}
		}
		pending = pending[:0]
		return nil
	}
	it := a.Routes.iter()
	for name, target, ok := it.next(); ok; name, target, ok = it.next() {
		if !l.fits(name) {
			if err := write(); err != nil {
				return err
			}
			l.next()
		}
		l.add(name)
		pending = append(pending, [2]string{name, target})
	}
	err := write()
	clear(pending[:cap(pending)]) // views into the body: let it go
	m.pending = pending[:0]
	if err != nil {
		return err
	}
	ld.pages++
	ld.received += a.Routes.Len()
	return nil
}

// switchTo makes the loaded generation the one routers read (one write of CurrentKey),
// then retires the one they read before.
func (m *Machine) switchTo(now int64, ld *load) error {
	live := genRecord{phase: genLive, revision: ld.revision, lineage: ld.lineage, count: ld.received, listed: ld.ix.listed}
	if err := m.host.Set(ld.g.stateKey(), live.String()); err != nil {
		return err
	}
	if err := m.host.Set(CurrentKey, ld.g.routePrefix()); err != nil {
		return err
	}
	old := m.cur
	m.cur, m.ix, m.size, m.load = ld.g, ld.ix, ld.received, nil
	m.revision, m.lineage, m.loaded = ld.revision, ld.lineage, true
	m.host.Gauges(m.size, m.revision)
	if err := m.host.Set(RevisionKey, strconv.FormatUint(m.revision, 10)); err != nil {
		m.host.Log(true, "sync: writing "+RevisionKey+" failed ("+err.Error()+"); routers are not affected")
	}
	if old != 0 {
		if old != legacyGen {
			// Best effort: a poller that replaces this one takes a generation that is
			// neither current nor loading for retired whatever its state key says.
			m.host.Set(old.stateKey(), genRecord{phase: genRetired}.String())
		}
		m.retire(old, now+RetireGraceSeconds*1e9)
	}
	return nil
}

// setRoute writes one route key of the current generation, keeping the size.
func (m *Machine) setRoute(name string, had bool, target string) error {
	if err := m.host.Set(routeKeyView(m.cur, name), target); err != nil {
		return err
	}
	if had {
		m.size--
	}
	if target != "" {
		m.size++
	}
	return nil
}

// applyDelta writes a checked delta into the current generation in place: its table
// key marked dirty, names new to it listed, the upserts and removals, then the table
// key clean and the revision.
func (m *Machine) applyDelta(a Answer) (added, changed, removed int, err error) {
	if err = m.writeLive(true); err != nil {
		return
	}
	var fresh []string
	for name := range a.Routes.All() {
		if _, ok := m.host.Peek(routeKeyView(m.cur, name)); !ok {
			fresh = append(fresh, name)
		}
	}
	if err = m.ix.appendNames(m.host, slices.Values(fresh)); err != nil {
		return
	}
	for name, target := range a.Routes.All() {
		old, _ := m.host.Peek(routeKeyView(m.cur, name))
		switch {
		case old == target:
			continue
		case len(old) == 0:
			added++
		default:
			changed++
		}
		if err = m.setRoute(name, old != "", target); err != nil {
			return
		}
	}
	for _, name := range a.Removals {
		if old, _ := m.host.Peek(routeKeyView(m.cur, name)); old == "" {
			continue
		}
		removed++
		if err = m.setRoute(name, true, ""); err != nil {
			return
		}
	}
	m.revision, m.lineage = a.Revision, strings.Clone(a.Lineage)
	if err = m.writeLive(false); err != nil {
		return
	}
	m.host.Gauges(m.size, m.revision)
	if e := m.host.Set(RevisionKey, strconv.FormatUint(m.revision, 10)); e != nil {
		m.host.Log(true, "sync: writing "+RevisionKey+" failed ("+e.Error()+"); routers are not affected")
	}
	return
}

// writeLive writes the current generation's state key.
func (m *Machine) writeLive(dirty bool) error {
	t := genRecord{phase: genLive, revision: m.revision, lineage: m.lineage, count: m.size, listed: m.ix.listed, dirty: dirty}
	return m.host.Set(m.cur.stateKey(), t.String())
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
