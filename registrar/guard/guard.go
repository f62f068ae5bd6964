// Package guard is what the registrar checks on every request before any handler
// sees it, against browsers being used to change routes (cross-site request forgery,
// DNS rebinding, clickjacking) and against bodies it would refuse anyway:
//
//   - every answer carries Content-Security-Policy, X-Frame-Options,
//     X-Content-Type-Options and Referrer-Policy (Headers);
//   - without a token, a Host header that is not an IP address, localhost or an
//     allowed name is answered 421: a page on attacker.example whose name was
//     re-pointed at the registrar (DNS rebinding) would otherwise be "same-origin";
//   - a write (any method but GET, HEAD, OPTIONS) whose Origin header is present and
//     is neither the registrar's own origin nor an allowed one is answered 403;
//   - a write with a body needs Content-Type: application/json (415 otherwise), which a
//     cross-origin page can only send after a CORS preflight the registrar never
//     grants — so an HTML form (text/plain, urlencoded, multipart) or a no-cors fetch
//     cannot write;
//   - a write declaring a Content-Length over the body limit is answered 413 before its
//     body is read, so a client that sent "Expect: 100-continue" never gets
//     "100 Continue" for it.
package guard

import (
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// Options configures Wrap.
type Options struct {
	// TokenSet says whether the registrar requires a bearer token. With one, a
	// rebinding page cannot write or read (the browser does not have the token), so
	// the Host header is not checked.
	TokenSet bool
	// Hosts are the names accepted in the Host header without a token, besides IP
	// addresses and "localhost": the -listen host and the -allow-host names.
	// Matching ignores case and a trailing dot.
	Hosts []string
	// HostFree are path prefixes answered whatever the Host header says: the feed
	// proxies poll with their configured authority, health and metrics probes.
	HostFree []string
	// Origins are origins ("https://cms.example.com") whose pages may write besides
	// the registrar's own (-allow-origin).
	Origins []string
	// MaxBody is the largest body a write may declare, in bytes (0: no limit here).
	MaxBody int64
	// MaxBodyAt overrides MaxBody for writes to the paths it names (exact match).
	MaxBodyAt map[string]int64
	// Fail writes a refusal (the registrar's {"result": ...} shape).
	Fail func(w http.ResponseWriter, code int, msg string)
}

// CSP is the page's Content-Security-Policy: its script, style and API calls come
// from the registrar itself (no inline code), nothing may frame it, and forms may
// only submit to it.
const CSP = "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Headers sets the security headers every registrar answer carries.
func Headers(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// Wrap applies the checks of the package comment in front of next.
func Wrap(next http.Handler, o Options) http.Handler {
	hosts := map[string]bool{"localhost": true}
	for _, h := range o.Hosts {
		if h = normHost(h); h != "" {
			hosts[h] = true
		}
	}
	origins := map[string]bool{}
	for _, s := range o.Origins {
		origins[strings.ToLower(strings.TrimSuffix(s, "/"))] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Headers(w.Header())
		if !o.TokenSet && !hostFree(r.URL.Path, o.HostFree) && !hostAllowed(r.Host, hosts) {
			o.Fail(w, http.StatusMisdirectedRequest, "this registrar does not answer for the host "+
				strconv.Quote(r.Host)+": without a token it answers only IP addresses, localhost, its -listen host and "+
				"-allow-host names (a guard against DNS rebinding); use one of those, add the name with -allow-host, or set a token")
			return
		}
		if isWrite(r.Method) {
			if origin := r.Header.Get("Origin"); origin != "" && !origins[strings.ToLower(origin)] && !sameOrigin(origin, r) {
				o.Fail(w, http.StatusForbidden, "writes from pages of another origin are refused (Origin "+strconv.Quote(origin)+
					"); use the registrar's own page, call the API without a browser, or list the origin with -allow-origin")
				return
			}
			if r.ContentLength != 0 { // -1: a body of unknown length
				if msg := jsonType(r.Header.Get("Content-Type")); msg != "" {
					o.Fail(w, http.StatusUnsupportedMediaType, msg)
					return
				}
			}
			limit := o.MaxBody
			if l, ok := o.MaxBodyAt[r.URL.Path]; ok {
				limit = l
			}
			if limit > 0 && r.ContentLength > limit {
				w.Header().Set("Connection", "close")
				hint := "; send one server at a time"
				if limit != o.MaxBody {
					hint = ""
				}
				o.Fail(w, http.StatusRequestEntityTooLarge, "request body is larger than "+size(limit)+
					" (Content-Length "+strconv.FormatInt(r.ContentLength, 10)+")"+hint)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func isWrite(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

func hostFree(path string, free []string) bool {
	for _, p := range free {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// normHost is the host part of a Host header or name, lower-case, without port,
// brackets or trailing dot.
func normHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimPrefix(strings.TrimSuffix(h, "]"), "[")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// hostAllowed: an IP address cannot be re-pointed by DNS, so only names need to be
// listed. A request without a Host (HTTP/1.0) comes from no browser.
func hostAllowed(header string, names map[string]bool) bool {
	h := normHost(header)
	if h == "" || names[h] {
		return true
	}
	_, err := netip.ParseAddr(h)
	return err == nil
}

// sameOrigin reports whether origin is the registrar's own as the request reached
// it: the scheme it was served over and the Host header.
func sameOrigin(origin string, r *http.Request) bool {
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return strings.EqualFold(origin, scheme+r.Host)
}

// jsonType returns "" when ct is application/json (parameters such as charset
// allowed), else the refusal.
func jsonType(ct string) string {
	if ct == "" {
		return `the body must be JSON, sent with the header "Content-Type: application/json" (the request had no Content-Type)`
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && mt == "application/json" {
		return ""
	}
	return `the body must be JSON, sent with the header "Content-Type: application/json" (got ` + strconv.Quote(ct) + `)`
}

func size(n int64) string {
	if n%1024 == 0 {
		return strconv.FormatInt(n/1024, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
