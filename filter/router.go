package main

import (
	"encoding/binary"
	"strconv"
	"unsafe"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"switchyard/filter/health"
	"switchyard/filter/routing"
	"switchyard/internal/abi"
	"switchyard/internal/contract"
	"switchyard/internal/pluginconfig"
	"switchyard/internal/validate"
)

// router is the "router" root: the HTTP filter on every worker. The decision is
// routing.Router's and the passive health check's health.Tracker's; this is the ABI
// glue that reads the request, makes the header edits, sends the local replies and,
// on the response path, reports failed targets. A stream's state is the target it
// was routed to; stream objects are reused (streamPool), so a request costs no
// allocation for its context.
type router struct {
	types.DefaultPluginContext
	rules   *routing.Router
	metrics routerMetrics
	// The local replies' bodies and headers (pairs format), built once at configure
	// time; UnknownServer's body names the server and is built per request.
	replyBodies  [routing.NumOutcomes]string
	replyHeaders [routing.NumOutcomes]string
	streams      streamPool
	// health is this VM's side of the passive health check (off when max_fails is 0).
	health *health.Tracker
	// routed counts routed requests not yet added to switchyard.routed: the counter is
	// moved on the tick (flushRouted), one host call per tick instead of one per request.
	routed int64

	// The tick's state (router_tick.go); a request never touches it.
	tick routerTick
}

func newRouter(cfg pluginconfig.Config) *router {
	r := &router{rules: routing.New(cfg), metrics: defineRouterMetrics(), tick: newRouterTick(cfg)}
	r.health = health.New(health.Settings{MaxFails: cfg.MaxFails, FailTimeout: int64(cfg.FailTimeout) * 1e9}, sharedStore{}, cfg.DefaultPort)
	if r.health.On() {
		r.rules.UseEjections(r.health)
	}
	for o := routing.Outcome(0); o < routing.NumOutcomes; o++ {
		if o.Rejected() {
			r.replyBodies[o] = string(r.rules.AppendReplyBody(nil, &routing.Decision{Outcome: o}))
			r.replyHeaders[o] = abi.EncodePairs(o.ReplyHeaders())
		}
	}
	return r
}

func (r *router) NewHttpContext(uint32) types.HttpContext { return r.streams.get(r) }

// OnTick runs the poll lease and the age watch (router_tick.go), and learns what the
// proxy's other routers found about targets (one shared-data read).
func (r *router) OnTick() {
	r.flushRouted()
	r.tick.run()
	r.health.Tick(hostNow())
}

// OnPluginDone releases the poll lease if this VM holds it, and adds the requests
// routed since the last tick to the counter.
func (r *router) OnPluginDone() bool {
	r.flushRouted()
	r.tick.lease.Release()
	r.tick.poller = nil
	return true
}

// flushRouted adds the requests routed since the last call to switchyard.routed (so
// the counter trails the requests by at most a tick, 100 ms).
func (r *router) flushRouted() {
	if r.routed > 0 {
		incrementMetric(r.metrics.routed, r.routed)
		r.routed = 0
	}
}

// routerStream is one HTTP stream of the router: the authority its request was routed
// to while the passive health check may want it on the response path.
type routerStream struct {
	types.DefaultHttpContext
	r *router
	// target holds the :authority the request was routed to (targetLen bytes; 0:
	// not routed, or the check is off), copied out of the request arena.
	target    [validate.MaxLen + len(":65535")]byte
	targetLen int
	next      *routerStream // in the pool's free list
}

// streamPool hands out stream objects and takes them back when their stream is done
// (on_log), so that streams cost no allocation once as many exist as run at once.
type streamPool struct{ free *routerStream }

func (p *streamPool) get(r *router) *routerStream {
	s := p.free
	if s == nil {
		return &routerStream{r: r}
	}
	p.free, s.next, s.targetLen = s.next, nil, 0
	return s
}

// OnHttpStreamDone returns the stream object to the pool: Envoy calls nothing on the
// stream after on_log but on_done and on_delete, which the SDK keeps to itself.
func (s *routerStream) OnHttpStreamDone() {
	p := &s.r.streams
	s.targetLen, s.next, p.free = 0, p.free, s
}

// OnHttpRequestHeaders applies routing.Router's decision. A request under a prefix
// either leaves with :authority set to its target or is answered here; it never goes
// upstream with the client's own authority (the dynamic forward proxy behind would
// honour it).
//
// This is the hot path, so it uses the module's own ABI calls (abi_wasm.go) rather
// than the SDK's: values land in a per-request arena, out-parameters are globals, and
// a routed request allocates nothing in the guest.
func (s *routerStream) OnHttpRequestHeaders(int, bool) types.Action {
	r := s.r
	s.targetLen = 0
	resetArena()
	headers, st := requestHeaderPairs()
	if st != abi.StatusOK {
		return r.fail("reading the request headers", st)
	}
	d, err := r.rules.Decide(headers, sharedTable{})
	if err != nil {
		return r.fail("reading the request headers", abi.StatusParseFailure)
	}
	switch d.Outcome {
	case routing.Pass:
		return types.ActionContinue
	case routing.Routed:
		for _, e := range d.Edits() {
			if e.Remove {
				st = removeRequestHeader(e.Header)
			} else {
				st = replaceRequestHeader(e.Header, e.Value)
			}
			if st != abi.StatusOK {
				return r.fail("editing the request header "+e.Header, st)
			}
		}
		r.routed++ // counted on the tick
		if d.Panic {
			incrementMetric(r.metrics.panic, 1)
		}
		if d.FromSet && r.health.On() {
			s.targetLen = copy(s.target[:], d.Edits()[0].Value) // the :authority edit
		}
		return types.ActionContinue
	}
	return r.reject(d)
}

// OnHttpResponseHeaders counts a failure of the target a routed request went to
// (passive health check): only for a status an upstream failure answers with (503,
// 504) does it read what the host says happened (response.flags, else
// response.code_details; docs/proxy-wasm-host.md). A request not routed here, routed
// to a name's one plain target (which gets every request whatever its health), or
// with the check off, costs no host call.
func (s *routerStream) OnHttpResponseHeaders(int, bool) types.Action {
	if s.targetLen == 0 {
		return types.ActionContinue
	}
	target := s.target[:s.targetLen]
	s.targetLen = 0
	v, st := responseHeader(":status")
	if st != abi.StatusOK || !health.MayHaveFailed(httpStatus(v)) {
		return types.ActionContinue
	}
	details := ""
	flagsRaw, st := property(propertyResponseFlags)
	haveFlags := st == abi.StatusOK && len(flagsRaw) == 8
	if !haveFlags {
		details, _ = property(propertyResponseCodeDetails)
	}
	var flags uint64
	if haveFlags {
		flags = binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(flagsRaw), 8))
	}
	if !health.Failed(flags, haveFlags, details) {
		return types.ActionContinue
	}
	r := s.r
	addr := string(target)
	ejected, err := r.health.Failure(addr, hostNow())
	if err != nil {
		proxywasm.LogWarn("router: recording the failure of target " + addr + " in shared data: " + err.Error() + "; this worker skips it alone")
	}
	if ejected {
		incrementMetric(r.metrics.ejections, 1)
		proxywasm.LogWarn("router: target " + addr + " failed " + strconv.Itoa(r.tick.cfg.MaxFails) + " time(s) within " +
			strconv.Itoa(r.tick.cfg.FailTimeout) + " s (max_fails, fail_timeout); every worker of this proxy skips it for " +
			strconv.Itoa(r.tick.cfg.FailTimeout) + " s")
	}
	return types.ActionContinue
}

// The properties the passive health check reads, as proxy_get_property paths.
const (
	propertyResponseFlags       = "response\x00flags"
	propertyResponseCodeDetails = "response\x00code_details"
)

// httpStatus reads a :status value (three digits); 0 when it is not one.
func httpStatus(v string) int {
	if len(v) != 3 {
		return 0
	}
	n := 0
	for i := 0; i < 3; i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0
		}
		n = n*10 + int(v[i]-'0')
	}
	return n
}

// replyBody holds UnknownServer's body while the host copies it: one buffer, reused.
var replyBody = make([]byte, 0, 256)

func (r *router) reject(d *routing.Decision) types.Action {
	body := r.replyBodies[d.Outcome]
	if d.Outcome == routing.UnknownServer {
		replyBody = r.rules.AppendReplyBody(replyBody[:0], d)
		body = unsafe.String(unsafe.SliceData(replyBody), len(replyBody))
	}
	sendLocalResponse(d.Outcome.Status(), d.Outcome.Code(), body, r.replyHeaders[d.Outcome])
	incrementMetric(r.metrics.rejected[d.Outcome], 1)
	return types.ActionPause
}

// fail answers 500 when the host refused a header read or edit: forwarding the
// request half-rewritten could send it to the wrong place.
func (r *router) fail(what string, st abi.Status) types.Action {
	proxywasm.LogError("router: " + what + " failed: " + st.String() + "; answered 500")
	sendLocalResponse(500, "switchyard_internal_error",
		`{"error":"internal_error","message":"The proxy could not rewrite the request; see the proxy log"}`, jsonReplyHeaders)
	return types.ActionPause
}

// sharedTable is the routing.Table in shared data, as a poller writes it
// (filter/polling/layout.go): contract.CurrentKey holds the route key prefix of the
// generation routers read, and that prefix + server name → target ("" or absent: not
// registered). A request reads the pointer, then the route key, within one callback:
// it is answered wholly from one generation, the one the poller switched to last. No
// pointer means no table yet (503), so telling 503 from 404 costs no third read.
type sharedTable struct{ sharedStore }

// lookupKey holds the key of a lookup, built in place so that a lookup allocates
// nothing (the VM runs one call at a time, so one buffer suffices); tableLoaded is
// whether the last Lookup found a current generation, which Loaded reports (routing
// asks it only right after a Lookup that found nothing).
var (
	lookupKey   = make([]byte, 0, len(contract.RouteKeyPrefixA)+128)
	tableLoaded bool
)

func (t sharedTable) Lookup(serverName string) (string, bool) {
	prefix, ok := t.view(contract.CurrentKey)
	tableLoaded = ok && contract.IsRouteKeyPrefix(prefix)
	if !tableLoaded {
		return "", false
	}
	lookupKey = contract.AppendRouteKey(lookupKey[:0], prefix, serverName)
	v, ok := t.view(unsafe.String(unsafe.SliceData(lookupKey), len(lookupKey)))
	if !ok || len(v) == 0 {
		return "", false
	}
	return v, true
}

func (sharedTable) Loaded() bool { return tableLoaded }
