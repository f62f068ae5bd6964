package devproxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// forward is one request on its way through the chain, carried in its context to the
// reverse proxy's hooks.
type forwardKey struct{}

type forward struct {
	route      *route
	cluster    *clusterSpec
	filtered   *filteredRequest // the wasm filter's stream; nil when it did not run
	serverName string           // the server name the filter routed by, for messages
	origin     string           // an Origin the route's CORS policy allows, "" otherwise
	upgrade    bool
	cancel     context.CancelCauseFunc
	timer      *time.Timer // the route timeout
	idle       *time.Timer // the idle timeout while no answer has come; nil: none
	idleFor    time.Duration
	deadline   *bodyDeadline
}

// ServeHTTP runs a request through what the Envoy config says, in Envoy's order: the
// connection manager's header and path rules, the route match, CORS, the wasm filter,
// then the route's cluster.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := &p.site.hcm
	// Envoy's header limits (max_headers_count, max_request_headers_kb): 431. The
	// command's http.Server also caps the bytes before a handler runs.
	if n, size := headerSize(r.Header); n > h.maxHeaders || size > h.maxHeaderBytes {
		writeJSON(w, http.StatusRequestHeaderFieldsTooLarge, CodeHeadersTooLarge,
			"the request has more than "+strconv.Itoa(h.maxHeaders)+" headers or "+strconv.Itoa(h.maxHeaderBytes>>10)+" KiB of them")
		return
	}
	if !p.underscores(w, r) {
		return
	}
	path, ok := p.normalise(w, r)
	if !ok {
		return
	}
	rt := p.site.routeFor(r.Host, path)
	if rt == nil {
		writeJSON(w, http.StatusNotFound, CodeNoRoute, "no route for "+path)
		return
	}
	// An upgrade is asked for with both Upgrade and Connection: upgrade; an Upgrade
	// header alone is a hop-by-hop header like any other and is dropped.
	f := &forward{route: rt, upgrade: r.Header.Get("Upgrade") != "" && connectionNominated(r.Header)["upgrade"]}
	if f.upgrade && (!rt.websocket || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket")) {
		// Envoy answers an upgrade its route does not enable with 403.
		writeJSON(w, http.StatusForbidden, CodeUpgradeRefused, "this route does not accept an upgrade to "+r.Header.Get("Upgrade"))
		return
	}
	if rt.cors != nil && h.corsFilter != "" && p.cors(w, r, rt, f) {
		return
	}
	if rt.wasm && len(p.routers) > 0 {
		if f.serverName = r.Header.Get(p.plugin.Header); f.serverName == "" {
			f.serverName = "(none)"
		}
		if f.filtered = p.runRouter(w, r); f.filtered == nil {
			return
		}
		defer f.filtered.stream.Close()
		// The filter's :authority and :path edits clear Envoy's route cache: the
		// route is matched again on what the filter left.
		fpath, _ := f.filtered.headers.Get(":path")
		fauth, _ := f.filtered.headers.Get(":authority")
		if rt = p.site.routeFor(fauth, pathOnly(fpath)); rt == nil {
			writeJSON(w, http.StatusNotFound, CodeNoRoute, "no route for "+pathOnly(fpath))
			return
		}
		f.route = rt
	}
	f.cluster = p.site.clusters[rt.cluster]
	if f.cluster.dfp && (f.filtered == nil || !f.filtered.targetChosen) {
		// Fail closed (envoy.yaml's failure policy): only a filter-chosen authority
		// may reach the dynamic forward proxy, which connects wherever it says.
		writeJSON(w, http.StatusServiceUnavailable, CodeFilterNoTarget, "the routing filter chose no target")
		return
	}
	ctx := context.WithValue(r.Context(), forwardKey{}, f)
	if rt.retries > 0 {
		ctx = context.WithValue(ctx, retriesKey{}, rt.retries)
	}
	if f.upgrade {
		idle := h.streamIdleTimeout
		if rt.idleSet {
			idle = rt.idleTimeout
		}
		ctx = context.WithValue(ctx, idleKey{}, idle)
	}
	ctx, f.cancel = context.WithCancelCause(ctx)
	defer f.cancel(nil)
	if rt.timeout > 0 {
		// Envoy's route timeout: the whole response, or until the upgrade is answered.
		f.timer = time.AfterFunc(rt.timeout, func() { f.cancel(errRouteTimeout) })
		defer f.timer.Stop()
	}
	// Waiting for the answer is bounded by the idle timeout too (Envoy's
	// stream_idle_timeout, or the route's idle_timeout): with a route timeout of 0
	// it is the only bound. Each byte of the request body restarts it.
	f.idleFor = h.streamIdleTimeout
	if rt.idleSet {
		f.idleFor = rt.idleTimeout
	}
	if f.idleFor > 0 {
		f.idle = time.AfterFunc(f.idleFor, func() { f.cancel(errRouteTimeout) })
		defer f.idle.Stop()
	}
	f.deadline = p.watchBody(w, r, rt)
	f.deadline.activity = f.bodyActivity
	p.proxy.ServeHTTP(w, r.WithContext(ctx))
	f.deadline.finish()
}

func pathOnly(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

// headerSize is the number of header lines (the unit of Envoy's max_headers_count)
// and their bytes, names and values.
func headerSize(h http.Header) (n, size int) {
	for k, vs := range h {
		n += len(vs)
		for _, v := range vs {
			size += len(k) + len(v)
		}
	}
	return n, size
}

// underscores applies headers_with_underscores_action; false when it answered.
func (p *Proxy) underscores(w http.ResponseWriter, r *http.Request) bool {
	act := p.site.hcm.underscores
	if act == 0 { // ALLOW
		return true
	}
	for k := range r.Header {
		if !strings.Contains(k, "_") {
			continue
		}
		if act == 1 { // REJECT_REQUEST
			writeJSON(w, http.StatusBadRequest, CodeUnderscoreHeader,
				"header names with underscores are refused here; use '-' instead of '_'")
			return false
		}
		r.Header.Del(k) // DROP_HEADER
	}
	return true
}

// cors applies the route's CORS policy as Envoy's CORS filter does; true when it
// answered a preflight itself.
func (p *Proxy) cors(w http.ResponseWriter, r *http.Request, rt *route, f *forward) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	allowed := rt.cors.allowed(origin)
	if allowed {
		f.origin = origin
	}
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false // an actual request: the answer gets the headers (modifyResponse)
	}
	if !allowed && rt.cors.forwardNotMatching {
		return false
	}
	if allowed {
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", origin)
		if rt.cors.credentials {
			hd.Set("Access-Control-Allow-Credentials", "true")
		}
		if rt.cors.methods != "" {
			hd.Set("Access-Control-Allow-Methods", rt.cors.methods)
		}
		if rt.cors.headers != "" {
			hd.Set("Access-Control-Allow-Headers", rt.cors.headers)
		}
		if rt.cors.age != "" {
			hd.Set("Access-Control-Max-Age", rt.cors.age)
		}
	}
	// Envoy answers a preflight with 200 and no body; one from an origin the policy
	// does not allow gets no CORS headers, so the browser refuses the request.
	w.WriteHeader(http.StatusOK)
	return true
}

// rewrite sends the request where the route and the filter said.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	f := pr.In.Context().Value(forwardKey{}).(*forward)
	out := pr.Out
	out.URL.Scheme = "http"
	if f.filtered != nil {
		rewriteFiltered(pr, f.filtered)
	} else {
		out.Host = pr.In.Host // Envoy forwards the client's Host to a cluster
	}
	if f.cluster.dfp {
		auth, _ := f.filtered.headers.Get(":authority")
		out.URL.Host, out.Host = auth, auth
	} else {
		out.URL.Host = f.cluster.name // the cluster transport picks the endpoint
	}
	for _, k := range f.route.removeReq {
		out.Header.Del(k)
	}
	// The connection manager's X-Forwarded-* rules. A client's Forwarded header is
	// never passed on: nothing here vouches for it.
	out.Header.Del("Forwarded")
	prior := pr.In.Header.Values("X-Forwarded-For")
	if p.site.hcm.useRemoteAddress {
		// The edge: the peer address is appended, and the scheme is the connection's.
		if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
			prior = append(prior, ip)
		}
		out.Header.Set("X-Forwarded-Proto", "http")
	} else if v := pr.In.Header.Values("X-Forwarded-Proto"); len(v) > 0 {
		out.Header["X-Forwarded-Proto"] = v
	}
	if len(prior) > 0 {
		out.Header.Set("X-Forwarded-For", strings.Join(prior, ", "))
	} else {
		out.Header.Del("X-Forwarded-For")
	}
}

// modifyResponse gives the router VM the response headers, applies the route's
// header removal and the CORS filter's response headers.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	f, ok := resp.Request.Context().Value(forwardKey{}).(*forward)
	if !ok {
		return nil
	}
	if resp.StatusCode == http.StatusSwitchingProtocols && f.timer != nil {
		f.timer.Stop() // the upgrade is answered; the tunnel has its idle timeout
	}
	if f.idle != nil {
		// The answer has begun; a stalled body is the copy's business from here
		// (the route timeout, and for tunnels the connection's idle deadline).
		f.idle.Stop()
	}
	if f.filtered != nil {
		f.filtered.stream.SetUpstream(answeredUpstream(resp.Request.URL.Host))
		if err := responseThroughFilter(resp, f.filtered); err != nil {
			return err
		}
	}
	for _, k := range f.route.removeResp {
		resp.Header.Del(k)
	}
	if f.origin != "" {
		resp.Header.Set("Access-Control-Allow-Origin", f.origin)
		if f.route.cors.credentials {
			resp.Header.Set("Access-Control-Allow-Credentials", "true")
		}
		if f.route.cors.expose != "" {
			resp.Header.Set("Access-Control-Expose-Headers", f.route.cors.expose)
		}
	}
	return nil
}

// routeTransport sends a request to its cluster: the dynamic forward proxy's dialer
// for the DFP cluster, the cluster transport for static ones, a transport without
// connection reuse for WebSocket upgrades (the tunnel owns its connection).
type routeTransport struct {
	clusters      *clusterTransport
	dfp, upgrades http.RoundTripper
}

func (t *routeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f := req.Context().Value(forwardKey{}).(*forward)
	switch {
	case f.upgrade && f.cluster.dfp:
		return t.upgrades.RoundTrip(req)
	case f.cluster.dfp:
		return t.dfp.RoundTrip(req)
	case f.upgrade:
		// The endpoint is picked as for any request; the connection is not pooled.
		return t.clusters.RoundTrip(req.WithContext(context.WithValue(req.Context(), upgradeKey{}, true)))
	}
	return t.clusters.RoundTrip(req)
}

type upgradeKey struct{}

// bodyDeadline bounds how long a client may take to send its request, as Envoy's
// request_timeout (the whole request) and stream_idle_timeout (no byte for that
// long) do: each read of the body moves the connection's read deadline to the
// nearer of the two. Once the body is read (or there is none) the deadline goes;
// the wait for the answer has its own idle timer (ServeHTTP). A body the upstream
// did not wait for is not drained after the answer (see finish).
type bodyDeadline struct {
	rc       *http.ResponseController
	idle     time.Duration
	whole    time.Time // zero: no request_timeout
	done     atomic.Bool
	hasBody  bool
	activity func() // called on each read of the body
	original io.ReadCloser
}

// bodyActivity restarts the idle timer while a request body is being sent.
func (f *forward) bodyActivity() {
	if f.idle != nil {
		f.idle.Reset(f.idleFor)
	}
}

func (p *Proxy) watchBody(w http.ResponseWriter, r *http.Request, rt *route) *bodyDeadline {
	d := &bodyDeadline{rc: http.NewResponseController(w), idle: p.site.hcm.streamIdleTimeout}
	if rt.idleSet {
		d.idle = rt.idleTimeout
	}
	if t := p.site.hcm.requestTimeout; t > 0 {
		d.whole = time.Now().Add(t)
	}
	d.hasBody = r.Body != nil && r.Body != http.NoBody && (r.ContentLength != 0 || len(r.TransferEncoding) > 0)
	if !d.hasBody {
		d.done.Store(true)
		return d
	}
	d.extend()
	d.original = r.Body
	r.Body = &watchedBody{d: d}
	return d
}

func (d *bodyDeadline) extend() {
	var t time.Time
	if d.idle > 0 {
		t = time.Now().Add(d.idle)
	}
	if !d.whole.IsZero() && (t.IsZero() || d.whole.Before(t)) {
		t = d.whole
	}
	if !t.IsZero() {
		d.rc.SetReadDeadline(t)
	}
}

// finish runs after the answer: a body not read to its end is not waited for beyond
// a second (what a fast client still sends in that time is read and dropped, so it
// sees the answer rather than a reset; net/http closes the connection after it).
func (d *bodyDeadline) finish() {
	if !d.done.Load() {
		d.rc.SetReadDeadline(time.Now().Add(time.Second))
	}
}

type watchedBody struct{ d *bodyDeadline }

func (b *watchedBody) Read(p []byte) (int, error) {
	if b.d.done.Load() {
		return 0, io.EOF
	}
	b.d.extend()
	n, err := b.d.original.Read(p)
	if n > 0 && b.d.activity != nil {
		b.d.activity()
	}
	if err == io.EOF && !b.d.done.Swap(true) {
		b.d.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (b *watchedBody) Close() error { return b.d.original.Close() }

// normalise applies the connection manager's path rules to r (normalize_path,
// merge_slashes, path_with_escaped_slashes_action) and returns the path to route on;
// false when it answered (a refused path, or Envoy's redirect to the unescaped one).
// The request goes upstream with the normalised path, as Envoy sends it.
func (p *Proxy) normalise(w http.ResponseWriter, r *http.Request) (string, bool) {
	h := &p.site.hcm
	raw, query := r.RequestURI, ""
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw, query = raw[:i], raw[i:]
	}
	if !strings.HasPrefix(raw, "/") {
		// An absolute-form or "*" target: route on the parsed path.
		raw = r.URL.EscapedPath()
	}
	path := raw
	unescaped := false
	if hasEscapedSlash(path) {
		switch h.escapedSlashes {
		case 2: // REJECT_REQUEST
			writeJSON(w, http.StatusBadRequest, CodeEscapedSlash, "the path holds an escaped slash (%2F or %5C), which is refused here")
			return "", false
		case 3, 4: // UNESCAPE_AND_REDIRECT, UNESCAPE_AND_FORWARD
			path, unescaped = unescapeSlashes(path), true
		}
	}
	if h.normalizePath {
		path = normalizePath(path)
	}
	if h.mergeSlashes {
		path = mergeSlashes(path)
	}
	if unescaped && h.escapedSlashes == 3 {
		w.Header().Set("Location", path+query)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return "", false
	}
	if path != raw || !strings.HasPrefix(r.RequestURI, "/") {
		u, err := url.ParseRequestURI(path + query)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, CodeBadPath, "the request path cannot be read")
			return "", false
		}
		r.URL.Path, r.URL.RawPath, r.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
		r.RequestURI = path + query
	}
	return path, true
}

func hasEscapedSlash(p string) bool {
	for i := 0; i+2 < len(p); i++ {
		if p[i] == '%' && (p[i+1] == '2' && (p[i+2] == 'f' || p[i+2] == 'F') || p[i+1] == '5' && (p[i+2] == 'c' || p[i+2] == 'C')) {
			return true
		}
	}
	return false
}

func unescapeSlashes(p string) string {
	r := strings.NewReplacer("%2f", "/", "%2F", "/", "%5c", "\\", "%5C", "\\")
	return r.Replace(p)
}

// normalizePath is RFC 3986 normalisation as Envoy's normalize_path does it: a
// backslash is a slash, an escaped unreserved character is decoded, the remaining
// escapes are upper-cased, and "." and ".." segments are removed.
func normalizePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			b.WriteByte('/')
		case c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]):
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			if isUnreserved(d) {
				b.WriteByte(d)
			} else {
				b.WriteByte('%')
				b.WriteString(strings.ToUpper(p[i+1 : i+3]))
			}
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	in := strings.Split(b.String(), "/")
	out := make([]string, 0, len(in))
	for i, seg := range in {
		last := i == len(in)-1
		switch seg {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, seg)
		}
	}
	res := strings.Join(out, "/")
	if !strings.HasPrefix(res, "/") {
		res = "/" + res
	}
	return res
}

func mergeSlashes(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	return p
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
