package devproxy

import (
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"unsafe"

	"switchyard/wasmhost"
)

// filteredRequest is a request the wasm router ran on.
type filteredRequest struct {
	stream  *wasmhost.Stream
	headers wasmhost.Headers // request headers after the filter's edits
	// targetChosen: the filter wrote :authority. Only then may the request reach
	// the dynamic forward proxy; comparing the value with the client's Host would
	// refuse a client whose Host happens to be its target's address.
	targetChosen bool
}

// runRouter runs the request through a router VM, as Envoy runs the wasm filter on a
// route where it is enabled. It returns nil when it answered (a local reply from the
// filter, or 503 when the filter could not run); otherwise the caller closes the
// stream once the answer is sent.
func (p *Proxy) runRouter(w http.ResponseWriter, r *http.Request) *filteredRequest {
	worker := p.routers[int(p.next.Add(1)%uint64(len(p.routers)))]
	vm := worker.current()
	if vm == nil {
		writeJSON(w, http.StatusServiceUnavailable, CodeFilterUnavailable, "the routing filter is restarting; retry")
		return nil
	}
	st, err := vm.NewStream(wasmhost.StreamAttributes{SourceAddress: r.RemoteAddr})
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, CodeFilterUnavailable, "the routing filter failed: "+err.Error())
		return nil
	}
	// The authority goes in as a copy of its own, so that a value the filter writes
	// (always a new string, even with the same text) can be told from it.
	authority := strings.Clone(r.Host)
	endOfStream := r.ContentLength == 0 && len(r.TransferEncoding) == 0
	action, err := st.RequestHeaders(requestHeaders(r, authority), endOfStream)
	if err != nil {
		st.Close()
		writeJSON(w, http.StatusServiceUnavailable, CodeFilterUnavailable, "the routing filter failed: "+err.Error())
		return nil
	}
	if lr := st.LocalResponse(); lr != nil {
		st.Close()
		writeLocal(w, lr)
		return nil
	}
	if action != wasmhost.Continue {
		// Envoy would hold the request until the filter resumes it; the router never
		// pauses without a reply, so this is a filter bug: fail closed.
		st.Close()
		writeJSON(w, http.StatusServiceUnavailable, CodeFilterStopped, "the routing filter stopped the request without an answer")
		return nil
	}
	rr := &filteredRequest{stream: st, headers: st.RequestHeaderMap()}
	auth, _ := rr.headers.Get(":authority")
	rr.targetChosen = auth != "" && (authority == "" || unsafe.StringData(auth) != unsafe.StringData(authority))
	return rr
}

// requestHeaders is the request as Envoy hands it to a filter: pseudo-headers first,
// then the headers, without the hop-by-hop ones (Connection, Upgrade, ... and every
// header Connection names), which belong to the client's connection only.
func requestHeaders(r *http.Request, authority string) wasmhost.Headers {
	h := make(wasmhost.Headers, 0, 4+len(r.Header))
	h = append(h,
		[2]string{":authority", authority},
		[2]string{":path", r.RequestURI},
		[2]string{":method", r.Method},
		[2]string{":scheme", "http"},
	)
	nominated := connectionNominated(r.Header)
	for k, vs := range r.Header {
		lk := lowerName(k)
		if hopByHop[lk] || nominated[lk] {
			continue
		}
		for _, v := range vs {
			h = append(h, [2]string{lk, v})
		}
	}
	return h
}

// connectionNominated is the set of (lower-case) header names the Connection header
// lists; nil when it lists none.
func connectionNominated(h http.Header) map[string]bool {
	var m map[string]bool
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
				if m == nil {
					m = map[string]bool{}
				}
				m[name] = true
			}
		}
	}
	return m
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

// rewriteFiltered sends the request with the filter's :path and header edits (removed,
// replaced and added headers); the caller sets where it goes.
func rewriteFiltered(pr *httputil.ProxyRequest, rr *filteredRequest) {
	path, _ := rr.headers.Get(":path")
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
	names := canonicalNames(pr.In.Header)
	vals := make([]string, len(rr.headers))
	for i, kv := range rr.headers {
		if kv[0] == "" || kv[0][0] == ':' || hopByHop[kv[0]] {
			continue
		}
		k := names.canonical(kv[0])
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
}

// responseThroughFilter gives the router VM the response headers (Envoy calls
// on_response_headers) and applies its edits.
func responseThroughFilter(resp *http.Response, rr *filteredRequest) error {
	h := make(wasmhost.Headers, 0, 1+len(resp.Header))
	h = appendHeaders(append(h, [2]string{":status", statusValue(resp.StatusCode)}), resp.Header)
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
