package devproxy

import (
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// Header names cross between Go's canonical form (User-Agent), which net/http keys
// its maps by, and the lower-case form of Envoy's maps (user-agent), which the filter
// sees, twice per request in each direction. Converting allocates a string per header;
// for the names requests and responses usually carry, both forms are kept here once.
var commonNames = []string{
	"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
	"Access-Control-Allow-Origin", "Age", "Allow", "Authorization", "Cache-Control",
	"Connection", "Content-Disposition", "Content-Encoding", "Content-Language",
	"Content-Length", "Content-Range", "Content-Type", "Cookie", "Date", "Etag", "Expect",
	"Expires", "Forwarded", "From", "Host", "If-Match", "If-Modified-Since", "If-None-Match",
	"If-Range", "If-Unmodified-Since", "Keep-Alive", "Last-Modified", "Link", "Location",
	"Origin", "Pragma", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection",
	"Range", "Referer", "Retry-After", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site",
	"Sec-Websocket-Accept", "Sec-Websocket-Extensions", "Sec-Websocket-Key",
	"Sec-Websocket-Protocol", "Sec-Websocket-Version", "Server", "Set-Cookie",
	"Strict-Transport-Security", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"User-Agent", "Vary", "Via", "Www-Authenticate", "X-Content-Type-Options",
	"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip",
	"X-Request-Id", "X-Requested-With", "X-Server-Name",
}

var (
	lowerOf     = make(map[string]string, len(commonNames)) // canonical → lower-case
	canonicalOf = make(map[string]string, len(commonNames)) // lower-case → canonical
)

func init() {
	for _, c := range commonNames {
		l := strings.ToLower(c)
		lowerOf[c], canonicalOf[l] = l, c
	}
}

// lowerName is strings.ToLower(name), without allocating for a common name.
func lowerName(name string) string {
	if l, ok := lowerOf[name]; ok {
		return l
	}
	return strings.ToLower(name)
}

// nameIndex finds the canonical form (the key http.Header.Add would file a name
// under) of the lower-case header names of the filter's map. Besides the common
// names, it looks for the name among the inbound request's keys, canonical already
// when net/http parsed them, so a header the client sent needs no new string either.
// The cost is linear in the number of headers: a few keys are scanned, more are
// indexed once per request.
type nameIndex struct {
	in      http.Header
	byLower map[string]string
}

// scanLimit is the inbound key count up to which a lookup scans instead of indexing.
const scanLimit = 16

func canonicalNames(in http.Header) *nameIndex { return &nameIndex{in: in} }

func (n *nameIndex) canonical(name string) string {
	if c, ok := canonicalOf[name]; ok {
		return c
	}
	if len(n.in) <= scanLimit {
		for k := range n.in {
			if len(k) == len(name) && strings.EqualFold(k, name) && plainName(k) && textproto.CanonicalMIMEHeaderKey(k) == k {
				return k
			}
		}
		return textproto.CanonicalMIMEHeaderKey(name)
	}
	if n.byLower == nil {
		n.byLower = make(map[string]string, len(n.in))
		for k := range n.in {
			if plainName(k) && textproto.CanonicalMIMEHeaderKey(k) == k {
				n.byLower[strings.ToLower(k)] = k
			}
		}
	}
	if k, ok := n.byLower[name]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

// plainName reports whether name has only letters, digits and '-', for which the
// canonical form follows from the lower-case one alone.
func plainName(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// statusValue gives the :status value for code; the codes an upstream answers with are
// formatted once.
func statusValue(code int) string {
	if code >= 100 && code < 600 {
		return statusStrings[code-100]
	}
	return strconv.Itoa(code)
}

var statusStrings = func() (s [500]string) {
	for i := range s {
		s[i] = strconv.Itoa(100 + i)
	}
	return s
}()
