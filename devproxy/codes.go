package devproxy

// Error codes of the dev proxy's own local replies (the "error" field of the JSON
// body, as in the filter's replies; internal/contract has the filter's codes).
const (
	CodeNoRoute           = "no_route"               // 404: no route of the config takes the path
	CodeHeadersTooLarge   = "headers_too_large"      // 431: over max_headers_count or max_request_headers_kb
	CodeUnderscoreHeader  = "header_with_underscore" // 400: headers_with_underscores_action REJECT_REQUEST
	CodeEscapedSlash      = "escaped_slash"          // 400: path_with_escaped_slashes_action REJECT_REQUEST
	CodeBadPath           = "bad_path"               // 400: the normalised path cannot be read
	CodeUpgradeRefused    = "upgrade_refused"        // 403: the route does not enable this upgrade
	CodeFilterUnavailable = "filter_unavailable"     // 503: the router VM is being replaced or failed
	CodeFilterStopped     = "filter_stopped"         // 503: the filter paused without an answer
	CodeFilterNoTarget    = "filter_no_target"       // 503: the filter wrote no :authority on a DFP route
	CodeUpstreamDown      = "upstream_unavailable"   // 503: the upstream refused, reset or could not be reached
	CodeUpstreamTimeout   = "upstream_timeout"       // 504: the route timeout passed
	CodeTargetRefused     = "target_refused"         // 403: the target's address is outside the target policy
	CodeNoHealthyUpstream = "no_healthy_upstream"    // 503: the cluster has no address

	// Envoy's HTTP/1 rules (http1.go, serve.go)
	CodeChunkedContentLength = "content_length_and_chunked" // 400: Content-Length with Transfer-Encoding; the connection is closed
	CodeHTTP10               = "http_1_0_refused"           // 426: HTTP/1.0 (accept_http_10 is off)
	CodeFragment             = "fragment_in_path"           // 400: the request target holds a #fragment
	CodeRequestHeaderTimeout = "request_header_timeout"     // 408: request_headers_timeout passed mid-head; the connection is closed
)
