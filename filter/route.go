package main

import (
	"strconv"
	"strings"

	"switchyard/internal/validate"
)

// Outcome is what the router does with one request.
type Outcome int

const (
	Pass      Outcome = iota // path not under a prefix: untouched
	Routed                   // :authority rewritten to the target
	Missing                  // 400 missing_server_name
	Invalid                  // 400 invalid_server_name
	NotLoaded                // 503 routes_not_loaded
	Unknown                  // 404 unknown_server
)

// Code is the machine-readable error of a rejection: the "error" field of the JSON
// reply, the local-reply details and the suffix of the rejection counter.
func (o Outcome) Code() string {
	switch o {
	case Missing:
		return "missing_server_name"
	case Invalid:
		return "invalid_server_name"
	case NotLoaded:
		return "routes_not_loaded"
	case Unknown:
		return "unknown_server"
	}
	return ""
}

// Status is the HTTP status of a rejection's local reply.
func (o Outcome) Status() uint32 {
	switch o {
	case Missing, Invalid:
		return 400
	case NotLoaded:
		return 503
	case Unknown:
		return 404
	}
	return 0
}

// Table is the router's view of the route table. In the plugin it reads shared data
// (sharedTable); tests use a map.
type Table interface {
	// Lookup gives the target registered for a valid server name.
	Lookup(name string) (target string, ok bool)
	// Loaded reports whether a table has ever been written.
	Loaded() bool
}

// Decide is the whole routing decision for a request under a prefix: name is the
// server-name header's value ("" when absent). For Routed it also gives the new
// :authority. Lookup is called once; Loaded only when the name is not found, so a
// routed request costs one table read.
func Decide(name string, t Table, defaultPort int) (Outcome, string) {
	if name == "" {
		return Missing, ""
	}
	if !validate.IsServerName(name) {
		return Invalid, ""
	}
	target, ok := t.Lookup(name)
	if !ok {
		if !t.Loaded() {
			return NotLoaded, ""
		}
		return Unknown, ""
	}
	return Routed, Authority(target, defaultPort)
}

// Authority gives the :authority for a target as the registrar stored it (already
// validated by the sync): the target itself when it has a port, else target:port.
// It allocates only when it has to add the port.
func Authority(target string, defaultPort int) string {
	if hasPort(target) {
		return target
	}
	return target + ":" + strconv.Itoa(defaultPort)
}

// hasPort works on validated targets only: host, host:port, [v6] or [v6]:port.
func hasPort(target string) bool {
	if strings.HasPrefix(target, "[") {
		return !strings.HasSuffix(target, "]")
	}
	return strings.IndexByte(target, ':') >= 0
}

// replyBody gives the JSON body of a rejection. header is the configured header name
// (a validated token, so it needs no escaping) and name the request's server name
// (used only for Unknown, where it has passed validate.IsServerName and needs none).
func replyBody(o Outcome, header, name string) []byte {
	return appendReplyBody(nil, o, header, name)
}

// appendReplyBody appends replyBody(o, header, name) to dst.
func appendReplyBody(dst []byte, o Outcome, header, name string) []byte {
	dst = append(append(append(dst, `{"error":"`...), o.Code()...), `","message":"`...)
	switch o {
	case Missing:
		dst = append(append(append(dst, "The "...), header...), " header is required on this path; set it to the name of a registered server"...)
	case Invalid:
		dst = append(append(append(dst, "The "...), header...), " header must be 1-100 characters of letters, digits, '.', '_' or '-'"...)
	case NotLoaded:
		dst = append(dst, "The route table has not been loaded from the registrar yet; retry in a second"...)
	case Unknown:
		dst = append(append(append(dst, "Server '"...), name...), "' is not registered"...)
	}
	return append(dst, `"}`...)
}

// Proxy-wasm statuses (WasmResult) the router tells apart.
const (
	statusOK           = 0
	statusNotFound     = 1
	statusParseFailure = 4
)

// statusText names a proxy-wasm status for a log line.
func statusText(st uint32) string {
	names := [...]string{"OK", "NotFound", "BadArgument", "SerializationFailure", "ParseFailure",
		"BadExpression", "InvalidMemoryAccess", "Empty", "CasMismatch", "ResultMismatch",
		"InternalFailure", "BrokenConnection", "Unimplemented"}
	if int(st) < len(names) {
		return names[st]
	}
	return "status " + strconv.Itoa(int(st))
}

// requestView is what the router reads from a request's headers: :path, the
// server-name header and :authority, each "" when absent (the first value when a
// header repeats, as proxy_get_header_map_value gives it).
type requestView struct {
	path, name, authority string
	hasPath               bool
}

// scanPairs reads a request's header map in the proxy-wasm pairs format (a u32
// count, a (key length, value length) u32 pair per header, then each key and value
// followed by NUL, little-endian; keys lower-case) and picks the headers the router
// needs, nameHeader being the configured server-name header. The views point into
// data. It reports false for data that is not in that format (the host's fault): the
// router then treats the request as one without those headers.
func scanPairs(data, nameHeader string) (requestView, bool) {
	var v requestView
	if len(data) == 0 {
		return v, true // an empty map is zero bytes
	}
	if len(data) < 4 {
		return v, false
	}
	n := uint64(le32(data))
	if uint64(len(data)) < 4+8*n {
		return v, false
	}
	off := 4 + 8*n
	var hasName, hasAuthority bool
	for i := uint64(0); i < n; i++ {
		kl, vl := uint64(le32(data[4+8*i:])), uint64(le32(data[8+8*i:]))
		if uint64(len(data))-off < kl+vl+2 {
			return requestView{}, false
		}
		key, val := data[off:off+kl], data[off+kl+1:off+kl+1+vl]
		off += kl + vl + 2
		switch {
		case key == ":path" && !v.hasPath:
			v.path, v.hasPath = val, true
		case key == ":authority" && !hasAuthority:
			v.authority, hasAuthority = val, true
		case key == nameHeader && !hasName:
			v.name, hasName = val, true
		}
	}
	return v, true
}

func le32(s string) uint32 {
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}
