package devproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"

	"switchyard/wasmhost"
)

// What Envoy's stream info says about the upstream when the response reaches the
// filter (docs/proxy-wasm-host.md, "What the filter is handed when the upstream
// fails"): the response flags (Envoy's legacy bit vector) and code details of each
// way an upstream can fail, as Envoy's router and dynamic forward proxy set them.
const (
	flagNoHealthyUpstream             = 1 << 1  // UH
	flagUpstreamRequestTimeout        = 1 << 2  // UT
	flagUpstreamConnectionFailure     = 1 << 5  // UF
	flagUpstreamConnectionTermination = 1 << 6  // UC
	flagDNSResolutionFailed           = 1 << 26 // DF

	detailsViaUpstream = "via_upstream"
	detailsEarlyReset  = "upstream_reset_before_response_started"
)

// failure is how an upstream failed: the answer and what the filter is handed.
type failure struct {
	status   int
	code     string // the dev proxy's error code (codes.go)
	what     string // for the message, after "the upstream of <who>"
	upstream wasmhost.Upstream
}

// classify maps the reverse proxy's error to Envoy's answer: 504 and UT when the route
// (or idle) timeout passed; 503 and UF for a connection that could not be made
// (refused, unreachable, connect timeout), DF for a name the resolver could not
// resolve; 503 and UC when the connection was reset or closed before the response.
// addr is where the request was sent ("" when unknown).
func classify(err error, timedOut bool, addr string) failure {
	up := wasmhost.Upstream{Address: upstreamAddress(err, addr)}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var refused *targetRefusedError
	var ne interface{ Timeout() bool }
	dial := errors.As(err, &opErr) && opErr.Op == "dial"
	switch {
	case errors.As(err, &refused):
		return failure{status: http.StatusForbidden, code: CodeTargetRefused,
			what: "has a target this proxy may not connect to (" + refused.reason + ")"}
	case errors.Is(err, errNoEndpoint):
		up.Flags, up.CodeDetails, up.Address = flagNoHealthyUpstream, "no_healthy_upstream", ""
		return failure{status: http.StatusServiceUnavailable, code: CodeNoHealthyUpstream, upstream: up}
	case timedOut:
		up.Flags, up.CodeDetails = flagUpstreamRequestTimeout, "response_timeout"
		return failure{status: http.StatusGatewayTimeout, code: CodeUpstreamTimeout, what: "did not answer in time", upstream: up}
	case errors.As(err, &dnsErr):
		// The dynamic forward proxy's local reply: no host was chosen.
		up.Flags, up.CodeDetails, up.Address = flagDNSResolutionFailed, "dns_resolution_failure", ""
		return failure{status: http.StatusServiceUnavailable, code: CodeUpstreamDown, what: "could not be resolved", upstream: up}
	case dial && errors.As(err, &ne) && ne.Timeout():
		up.Flags, up.CodeDetails = flagUpstreamConnectionFailure, detailsEarlyReset+"{connection_timeout}"
		return failure{status: http.StatusServiceUnavailable, code: CodeUpstreamDown, what: "could not be reached in time", upstream: up}
	case dial:
		up.Flags, up.CodeDetails = flagUpstreamConnectionFailure, detailsEarlyReset+"{remote_connection_failure}"
		what := "could not be reached"
		if errors.Is(err, syscall.ECONNREFUSED) {
			what = "refused the connection"
		}
		return failure{status: http.StatusServiceUnavailable, code: CodeUpstreamDown, what: what, upstream: up}
	case errors.As(err, &ne) && ne.Timeout():
		up.Flags, up.CodeDetails = flagUpstreamRequestTimeout, "response_timeout"
		return failure{status: http.StatusGatewayTimeout, code: CodeUpstreamTimeout, what: "did not answer in time", upstream: up}
	}
	// Connected, then reset or closed before a response (ECONNRESET, EOF): on HTTP/1
	// Envoy sees the connection terminate.
	up.Flags, up.CodeDetails = flagUpstreamConnectionTermination, detailsEarlyReset+"{connection_termination}"
	what := "reset the connection"
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		what = "closed the connection before answering"
	}
	return failure{status: http.StatusServiceUnavailable, code: CodeUpstreamDown, what: what, upstream: up}
}

// upstreamAddress is upstream.address: the remote end of the failed connection when
// the error names it, else addr when it is an ip:port (Envoy's host address is always
// resolved), else "".
func upstreamAddress(err error, addr string) string {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Addr != nil {
		if ap, perr := netip.ParseAddrPort(opErr.Addr.String()); perr == nil {
			return ap.String()
		}
	}
	if ap, perr := netip.ParseAddrPort(addr); perr == nil {
		return ap.String()
	}
	return ""
}

// upstreamError answers as Envoy does when the chosen upstream fails (classify); on
// a route the filter ran on, the answer goes through the filter's response path with
// the flags and details Envoy would hand it. The answer names the server (routed
// requests) or the cluster, never an address: the error itself, which carries the
// address, goes to the log only.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	f, _ := r.Context().Value(forwardKey{}).(*forward)
	timedOut := context.Cause(r.Context()) == errRouteTimeout
	if errors.Is(r.Context().Err(), context.Canceled) && !timedOut {
		return // the client went away; nobody to answer
	}
	who := "cluster " + f.route.cluster
	if f.serverName != "" {
		who = "server " + f.serverName
	}
	addr := ""
	if f.cluster != nil && f.cluster.dfp && f.filtered != nil {
		addr, _ = f.filtered.headers.Get(":authority")
	}
	fl := classify(err, timedOut, addr)
	msg := "the upstream of " + who + " " + fl.what
	if fl.code == CodeNoHealthyUpstream {
		msg = "the upstream of " + who + " has no address; start the dev proxy with -cluster " + f.route.cluster + "=URL or -upstream URL"
	}
	p.log.Warn("upstream failed", "path", r.URL.Path, "who", who, "err", err)
	body := jsonBody(fl.code, msg)
	if f.filtered != nil {
		h := wasmhost.Headers{{":status", statusValue(fl.status)}, {"content-type", "application/json"},
			{"content-length", strconv.Itoa(len(body))}}
		f.filtered.stream.SetUpstream(fl.upstream)
		if _, ferr := f.filtered.stream.ResponseHeaders(h, false); ferr != nil {
			p.log.Warn("the routing filter failed on the error answer", "err", ferr)
		} else {
			for _, kv := range f.filtered.stream.ResponseHeaderMap() {
				if kv[0] != "" && kv[0][0] != ':' && kv[0] != "content-length" {
					w.Header().Add(kv[0], kv[1])
				}
			}
			w.WriteHeader(fl.status)
			w.Write(body)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(fl.status)
	w.Write(body)
}

// answeredUpstream is what the filter is handed with an upstream's own response: no
// flags, via_upstream, and the address it came from when the request went to an
// ip:port (a DNS name's resolved address is not known here; the property is then
// absent).
func answeredUpstream(addr string) wasmhost.Upstream {
	return wasmhost.Upstream{CodeDetails: detailsViaUpstream, Address: upstreamAddress(nil, addr)}
}
