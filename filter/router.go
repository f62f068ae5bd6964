package main

import (
	"unsafe"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"switchyard/filter/routing"
	"switchyard/internal/abi"
	"switchyard/internal/contract"
	"switchyard/internal/pluginconfig"
)

// router is the "router" root: the HTTP filter on every worker. The decision is
// routing.Router's; this is the ABI glue that reads the request, makes the header
// edits and sends the local replies. It holds no per-request state, so one stream
// object serves every stream of the root and a request costs no allocation for its
// context.
type router struct {
	types.DefaultPluginContext
	rules   *routing.Router
	metrics routerMetrics
	// The local replies' bodies and headers (pairs format), built once at configure
	// time; UnknownServer's body names the server and is built per request.
	replyBodies  [routing.NumOutcomes]string
	replyHeaders [routing.NumOutcomes]string
	stream       routerStream

	// The tick's state (router_tick.go); a request never touches it.
	tick routerTick
}

func newRouter(cfg pluginconfig.Config) *router {
	r := &router{rules: routing.New(cfg), metrics: defineRouterMetrics(), tick: newRouterTick(cfg)}
	for o := routing.Outcome(0); o < routing.NumOutcomes; o++ {
		if o.Rejected() {
			r.replyBodies[o] = string(r.rules.AppendReplyBody(nil, &routing.Decision{Outcome: o}))
			r.replyHeaders[o] = abi.EncodePairs(o.ReplyHeaders())
		}
	}
	r.stream.r = r
	return r
}

func (r *router) NewHttpContext(uint32) types.HttpContext { return &r.stream }

// OnTick runs the poll lease and the age watch (router_tick.go).
func (r *router) OnTick() { r.tick.run() }

// OnPluginDone releases the poll lease if this VM holds it.
func (r *router) OnPluginDone() bool {
	r.tick.lease.Release()
	r.tick.poller = nil
	return true
}

type routerStream struct {
	types.DefaultHttpContext
	r *router
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
		incrementMetric(r.metrics.routed, 1)
		return types.ActionContinue
	}
	return r.reject(d)
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
