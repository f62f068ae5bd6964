package devproxy

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"

	"switchyard/wasmhost"
)

// A routed request carries its stream through the reverse proxy's hooks.
type routedKey struct{}

type routedRequest struct {
	stream  *wasmhost.Stream
	headers wasmhost.Headers // request headers after the filter's edits
}

// serveRouted runs the request through a router VM (as Envoy runs the wasm filter on the
// /sys route) and forwards it to the :authority the filter chose.
func (p *Proxy) serveRouted(w http.ResponseWriter, r *http.Request) {
	worker := p.routers[int(p.next.Add(1)%uint64(len(p.routers)))]
	vm := worker.current()
	if vm == nil {
		writeJSON(w, http.StatusServiceUnavailable, "filter_unavailable", "the routing filter is restarting; retry")
		return
	}
	st, err := vm.NewStream(wasmhost.StreamAttributes{SourceAddress: r.RemoteAddr})
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, "filter_unavailable", "the routing filter failed: "+err.Error())
		return
	}
	defer st.Close()
	endOfStream := r.ContentLength == 0 && len(r.TransferEncoding) == 0
	action, err := st.RequestHeaders(requestHeaders(r), endOfStream)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, "filter_unavailable", "the routing filter failed: "+err.Error())
		return
	}
	if lr := st.LocalResponse(); lr != nil {
		writeLocal(w, lr)
		return
	}
	if action != wasmhost.Continue {
		// Envoy would hold the request until the filter resumes it; the router never
		// pauses without a reply, so this is a filter bug: fail closed.
		writeJSON(w, http.StatusServiceUnavailable, "filter_stopped", "the routing filter stopped the request without an answer")
		return
	}
	rr := &routedRequest{stream: st, headers: st.RequestHeaderMap()}
	if auth, _ := rr.headers.Get(":authority"); auth == "" || auth == r.Host {
		// Fail closed (envoy.yaml's failure policy): only a filter-chosen authority may
		// leave through the routed path.
		writeJSON(w, http.StatusServiceUnavailable, "filter_no_target", "the routing filter chose no target")
		return
	}
	p.routed.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), routedKey{}, rr)))
}

// requestHeaders is the request as Envoy hands it to a filter: pseudo-headers first,
// then the headers.
func requestHeaders(r *http.Request) wasmhost.Headers {
	h := make(wasmhost.Headers, 0, 4+len(r.Header))
	h = append(h,
		[2]string{":authority", r.Host},
		[2]string{":path", r.RequestURI},
		[2]string{":method", r.Method},
		[2]string{":scheme", "http"},
	)
	return appendHeaders(h, r.Header)
}

// appendHeaders adds every header of hdr to h as a proxy-wasm host hands them to a
// filter: lower-case names, one pair per value.
func appendHeaders(h wasmhost.Headers, hdr http.Header) wasmhost.Headers {
	for k, vs := range hdr {
		lk := lowerName(k)
		for _, v := range vs {
			h = append(h, [2]string{lk, v})
		}
	}
	return h
}

func writeLocal(w http.ResponseWriter, lr *wasmhost.LocalResponse) {
	for _, kv := range lr.Headers {
		w.Header().Add(kv[0], kv[1])
	}
	w.WriteHeader(lr.Status)
	w.Write(lr.Body)
}

// hopByHop headers belong to one connection; the reverse proxy manages them (and
// re-adds Connection/Upgrade for WebSocket upgrades).
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "te": true,
	"trailer": true, "transfer-encoding": true, "upgrade": true,
	"proxy-authenticate": true, "proxy-authorization": true,
}

// rewriteRouted sends the request where the filter said: its :authority and :path, and
// its header edits (removed, replaced and added headers).
func rewriteRouted(pr *httputil.ProxyRequest) {
	rr := pr.In.Context().Value(routedKey{}).(*routedRequest)
	auth, _ := rr.headers.Get(":authority")
	path, _ := rr.headers.Get(":path")
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = auth
	pr.Out.Host = auth
	// Out.URL was parsed from the request line already; only a :path the filter
	// rewrote needs parsing again.
	if path != pr.In.RequestURI {
		if u, err := pr.Out.URL.Parse(path); err == nil {
			pr.Out.URL.Path, pr.Out.URL.RawPath, pr.Out.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
		}
	}
	// The outbound header is the filter's map, and nothing else of the clone the
	// reverse proxy made: that clone's map is emptied and refilled, and the values
	// share one backing array, so the rewrite costs no allocation per header.
	out := pr.Out.Header
	// The reverse proxy has already set Connection/Upgrade for an upgrade request;
	// those belong to the hop, not to the filter's map, so carry them over.
	conn, upgrade := out["Connection"], out["Upgrade"]
	clear(out)
	vals := make([]string, len(rr.headers))
	for i, kv := range rr.headers {
		if kv[0] == "" || kv[0][0] == ':' || hopByHop[kv[0]] {
			continue
		}
		k := canonicalName(kv[0], pr.In.Header)
		vals[i] = kv[1]
		if prev, ok := out[k]; ok {
			out[k] = append(prev, kv[1])
		} else {
			out[k] = vals[i : i+1 : i+1]
		}
	}
	if len(conn) > 0 {
		out["Connection"] = conn
	}
	if len(upgrade) > 0 {
		out["Upgrade"] = upgrade
	}
	// X-Forwarded-For as Envoy's use_remote_address appends it; the filter owns
	// X-Forwarded-Host, so keep its value.
	if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		if prior := pr.In.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		out.Set("X-Forwarded-For", ip)
	}
}

// responseThroughFilter gives the router VM the response headers (Envoy calls
// on_response_headers) and applies its edits.
func responseThroughFilter(resp *http.Response) error {
	rr, ok := resp.Request.Context().Value(routedKey{}).(*routedRequest)
	if !ok {
		return nil
	}
	h := make(wasmhost.Headers, 0, 1+len(resp.Header))
	h = appendHeaders(append(h, [2]string{":status", statusText(resp.StatusCode)}), resp.Header)
	eos := resp.ContentLength == 0
	if _, err := rr.stream.ResponseHeaders(h, eos); err != nil {
		return err
	}
	edited := rr.stream.ResponseHeaderMap()
	if len(edited) == 0 || slices.Equal(edited, h) {
		return nil // the filter changed nothing: keep the header as it came
	}
	out := make(http.Header, len(edited))
	for _, kv := range edited {
		if kv[0] == "" || kv[0][0] == ':' {
			continue
		}
		out.Add(kv[0], kv[1])
	}
	resp.Header = out
	return nil
}
