package health

import "strings"

// What counts as a failure, read on the response path the way Envoy reports it
// (docs/proxy-wasm-host.md, "What the filter is handed when the upstream fails"):
// the property response.flags is Envoy's legacy response-flag bit vector
// (StreamInfo::legacyResponseFlags(), one bit per CoreResponseFlag in its order), and
// response.code_details the detail string of the local reply.
const (
	FlagUpstreamRequestTimeout        = 1 << 2  // UT: the route timeout passed (504, response_timeout)
	FlagUpstreamRemoteReset           = 1 << 4  // UR: the upstream reset the stream
	FlagUpstreamConnectionFailure     = 1 << 5  // UF: the connection could not be made
	FlagUpstreamConnectionTermination = 1 << 6  // UC: the connection closed before the response
	FlagDNSResolutionFailed           = 1 << 26 // DF: the dynamic forward proxy could not resolve the target

	// FailureFlags are the flags that count against the target.
	FailureFlags = FlagUpstreamRequestTimeout | FlagUpstreamRemoteReset | FlagUpstreamConnectionFailure |
		FlagUpstreamConnectionTermination | FlagDNSResolutionFailed
)

// Response code details that count against the target when a host gives no flags:
// the router's upstream_reset_before_response_started{<reason>[,<transport reason>]}
// and response_timeout, and the dynamic forward proxy's dns_resolution_failure (with
// the resolver's details in braces behind it when Envoy's dns_details feature is on).
const (
	DetailsEarlyReset      = "upstream_reset_before_response_started"
	DetailsResponseTimeout = "response_timeout"
	DetailsDNSFailure      = "dns_resolution_failure"
)

// MayHaveFailed reports from the status alone whether the response may be an upstream
// failure, so that the properties are read only then: Envoy answers those 503 (connect
// failure, reset, DNS failure) or 504 (timeout). An upstream's own 5xx is read too,
// and told apart by its flags (none) and details (via_upstream).
func MayHaveFailed(status int) bool { return status == 503 || status == 504 }

// Failed reports whether a response with these response.flags and
// response.code_details is a failure of the target: any of FailureFlags, or, when the
// flags are absent (haveFlags false), one of the details above.
func Failed(flags uint64, haveFlags bool, details string) bool {
	if haveFlags {
		return flags&FailureFlags != 0
	}
	return strings.HasPrefix(details, DetailsEarlyReset+"{") || details == DetailsEarlyReset ||
		details == DetailsResponseTimeout || strings.HasPrefix(details, DetailsDNSFailure)
}
