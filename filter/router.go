package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"

	"switchyard/internal/pluginconfig"
)

// router is the "router" root: the HTTP filter on every worker. It holds no
// per-request state, so one stream object serves every stream of the root and a
// request costs no allocation for its context.
type router struct {
	types.DefaultPluginContext
	cfg     pluginconfig.Config
	metrics routerMetrics
	// Local replies that do not depend on the request, built once at configure time.
	bodies       [Unknown + 1]string
	jsonHeaders  string // pairs: content-type
	retryHeaders string // pairs: content-type, retry-after
	stream       routerStream
}

func newRouter(cfg pluginconfig.Config) *router {
	r := &router{cfg: cfg, metrics: defineRouterMetrics()}
	for _, o := range []Outcome{Missing, Invalid, NotLoaded} {
		r.bodies[o] = string(replyBody(o, cfg.Header, ""))
	}
	r.jsonHeaders = serializePairs([][2]string{{"content-type", "application/json"}})
	r.retryHeaders = serializePairs([][2]string{{"content-type", "application/json"}, {"retry-after", "1"}})
	r.stream.r = r
	return r
}

func (r *router) NewHttpContext(uint32) types.HttpContext { return &r.stream }

type routerStream struct {
	types.DefaultHttpContext
	r *router
}

// OnHttpRequestHeaders applies Decide. A request under a prefix either leaves with
// :authority set to its target or is answered here; it never goes upstream with the
// client's own authority (the dynamic forward proxy behind would honour it).
//
// This is the hot path, so it uses the module's own ABI calls (abi_wasm.go) rather
// than the SDK's: values land in a per-request arena, out-parameters are globals, and
// a routed request allocates nothing in the guest.
func (s *routerStream) OnHttpRequestHeaders(int, bool) types.Action {
	r := s.r
	resetArena()
	pairs, st := requestHeaderPairs()
	if st != statusOK {
		return r.fail("reading the request headers", st)
	}
	req, ok := scanPairs(pairs, r.cfg.Header)
	if !ok {
		return r.fail("reading the request headers", statusParseFailure)
	}
	if !req.hasPath || !pluginconfig.MatchesPrefix(req.path, r.cfg.PathPrefixes) {
		return types.ActionContinue
	}
	name, original := req.name, req.authority
	outcome, authority := Decide(name, sharedTable{}, r.cfg.DefaultPort)
	if outcome != Routed {
		return r.reject(outcome, name)
	}
	if st := replaceRequestHeader(":authority", authority); st != statusOK {
		return r.fail("setting :authority", st)
	}
	if original != "" {
		st = replaceRequestHeader("x-forwarded-host", original)
	} else {
		// Never pass on a client-supplied value as if it were ours.
		st = removeRequestHeader("x-forwarded-host")
	}
	if st != statusOK {
		return r.fail("setting x-forwarded-host", st)
	}
	if r.cfg.StripHeader {
		if st := removeRequestHeader(r.cfg.Header); st != statusOK {
			return r.fail("removing "+r.cfg.Header, st)
		}
	}
	incrementMetric(uint32(r.metrics.routed), 1)
	return types.ActionContinue
}

// replyBuf holds the 404 body while the host copies it: one buffer, reused.
var replyBuf = make([]byte, 0, 256)

func (r *router) reject(o Outcome, name string) types.Action {
	body, headers := r.bodies[o], r.jsonHeaders
	switch o {
	case Unknown:
		replyBuf = appendReplyBody(replyBuf[:0], o, r.cfg.Header, name)
		body = unsafeString(replyBuf)
	case NotLoaded:
		headers = r.retryHeaders
	}
	sendLocalResponse(o.Status(), o.Code(), body, headers)
	incrementMetric(uint32(r.metrics.rejected[o]), 1)
	return types.ActionPause
}

// fail answers 500 when the host refused a header edit: forwarding the request
// half-rewritten could send it to the wrong place.
func (r *router) fail(what string, st uint32) types.Action {
	proxywasm.LogError("router: " + what + " failed: " + statusText(st) + "; answered 500")
	sendLocalResponse(500, "switchyard_internal_error",
		`{"error":"internal_error","message":"The proxy could not rewrite the request; see the proxy log"}`, r.jsonHeaders)
	return types.ActionPause
}

// sharedTable is the Table of design.md read from shared data (layout in table.go):
// one get per routed request, a second only to tell 503 from 404.
type sharedTable struct{}

func (sharedTable) Lookup(name string) (string, bool) {
	v, st := sharedData(routeKeyView(name))
	if st != statusOK || len(v) == 0 {
		return "", false
	}
	return v, true
}

func (sharedTable) Loaded() bool {
	v, st := sharedData(revisionKey)
	return st == statusOK && len(v) > 0
}

// misconfiguredStream answers every request when an HTTP stream reaches the sync
// root (the HTTP filter configured with root_id "sync"): failing closed is the only
// safe answer, since the request would otherwise go upstream unrouted.
type misconfiguredStream struct {
	types.DefaultHttpContext
}

var misconfiguredHeaders = serializePairs([][2]string{{"content-type", "application/json"}})

func (*misconfiguredStream) OnHttpRequestHeaders(int, bool) types.Action {
	proxywasm.LogError(`an HTTP request reached the "sync" root: configure the HTTP filter with root_id "router"`)
	sendLocalResponse(500, "switchyard_misconfigured",
		`{"error":"misconfigured","message":"The proxy's Switchyard filter is configured with root_id sync; it must be router"}`, misconfiguredHeaders)
	return types.ActionPause
}
