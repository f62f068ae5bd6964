// Package validate holds the rules for server names and target addresses that the
// registrar enforces on every write and the filter's sync enforces again on every
// snapshot it receives (ServerName, ParseAddress). It is pure Go with no
// dependencies beyond the standard library, so it builds for wasip1 and arms no timer.
package validate

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLen is the longest server name or address accepted, in bytes (the Lua setup's
// limit, docs/origin.md).
const MaxLen = 100

// ServerName reports why s is not a valid server name, or nil. A name is 1–100
// characters of A-Z a-z 0-9 . _ - and is matched exactly (case-sensitive).
func ServerName(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if len(s) > MaxLen {
		return errors.New("must be at most 100 characters")
	}
	for i := 0; i < len(s); i++ {
		if !nameByte(s[i]) {
			return errors.New("may contain only letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}

// VisibleASCII reports whether every byte of s is visible ASCII: no space, no control
// character, nothing past '~'. The identity, lineage and proxy-id checks of the filter
// and the registrar bound the length and use it for the bytes.
func VisibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// IsServerName is ServerName without the message; it does not allocate.
func IsServerName(s string) bool {
	if s == "" || len(s) > MaxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nameByte(s[i]) {
			return false
		}
	}
	return true
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// MaxServiceName is the serviceName limit in characters (Unicode code points, so a
// Korean service name gets the same 100 characters as an English one; the Lua
// setup counted bytes).
const MaxServiceName = 100

// ServiceName reports why s is not a valid serviceName, or nil. A serviceName is free
// text shown on the page and in logs: 1–100 characters, not blank, valid UTF-8, and
// free of characters that would let it forge or disguise what is shown:
//   - control characters (CR/LF in particular, which would forge lines in logs) and
//     the line and paragraph separators U+2028, U+2029;
//   - format characters (Unicode category Cf): bidirectional overrides and isolates
//     such as U+202E, which make "billing \u202e10.0.0.1 :kcatta" read as
//     "billing attack: 1.0.0.01", zero-width spaces and joiners (U+200B..U+200F),
//     invisible operators (U+2060..U+2064) and the byte-order mark U+FEFF;
//   - U+FFFD, the replacement character, which is what a lone surrogate escape
//     ("\ud800") or an invalid UTF-8 sequence becomes when JSON is decoded, so the
//     text is not what the client sent.
func ServiceName(s string) error {
	switch {
	case !utf8.ValidString(s):
		return errors.New("is not valid UTF-8")
	case strings.TrimSpace(s) == "":
		return errors.New("must not be empty")
	case utf8.RuneCountInString(s) > MaxServiceName:
		return errors.New("must be at most 100 characters (got " + strconv.Itoa(utf8.RuneCountInString(s)) + ")")
	}
	for _, r := range s {
		switch {
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			return errors.New("must not contain control characters (found " + codePoint(r) + ")")
		case unicode.Is(unicode.Cf, r):
			return errors.New("must not contain invisible format characters such as direction overrides or zero-width spaces (found " + codePoint(r) + ")")
		case r == utf8.RuneError:
			return errors.New("must not contain U+FFFD, the replacement character (a lone surrogate such as \\ud800 or invalid UTF-8 decodes to it); send the text as valid UTF-8")
		}
	}
	return nil
}

// codePoint writes r as U+XXXX (at least four hex digits), without fmt.
func codePoint(r rune) string {
	h := strings.ToUpper(strconv.FormatInt(int64(r), 16))
	for len(h) < 4 {
		h = "0" + h
	}
	return "U+" + h
}

// Address is a parsed target address.
type Address struct {
	// Host is the IP (IPv6 without brackets) or the DNS name, as written.
	Host string
	// IP is set when Host is an IP literal.
	IP netip.Addr
	// Port is 0 when the address carries none.
	Port int
}

// IsIP reports whether the host part is an IP literal.
func (a Address) IsIP() bool { return a.IP.IsValid() }

// String gives the address in the form it was accepted in: host, host:port,
// [v6] or [v6]:port.
func (a Address) String() string { return a.WithDefaultPort(0) }

// WithDefaultPort gives host:port, using port when the address has none;
// with port 0 and no port of its own the address is returned without one.
func (a Address) WithDefaultPort(port int) string {
	h := a.Host
	if a.IP.Is6() {
		h = "[" + h + "]"
	}
	p := a.Port
	if p == 0 {
		p = port
	}
	if p == 0 {
		return h
	}
	return h + ":" + strconv.Itoa(p)
}

// ParseAddress checks s against the address rules: an IPv4 address, a bracketed
// IPv6 address or an RFC 1123 DNS name, each with an optional :port (1–65535), at
// most 100 characters in all. The error says what is wrong in words a person can act on.
func ParseAddress(s string) (Address, error) {
	if ip, host, port, ok := ipv4Port(s); ok {
		return Address{Host: s[:host], IP: netip.AddrFrom4(ip), Port: port}, nil
	}
	return parseAddress(s)
}

// ValidAddress reports whether ParseAddress accepts s, without building the Address
// in the usual case: the filter checks every target of a table of 10^6 names.
func ValidAddress(s string) bool {
	if _, _, _, ok := ipv4Port(s); ok {
		return true
	}
	_, err := parseAddress(s)
	return err == nil
}

// ipv4Port reads the usual form, an IPv4 address with an optional port, in one pass
// (in a Wasm VM the general path costs some 800 ns an address): the address bytes,
// the length of its host part and the port (0: none). ok is false for anything else,
// valid or not, which parseAddress then reads; what this accepts, parseAddress
// accepts alike (FuzzParseAddress holds the two to it).
func ipv4Port(s string) (ip [4]byte, host, port int, ok bool) {
	i := 0
	for k := range 4 {
		if k > 0 {
			if i >= len(s) || s[i] != '.' {
				return ip, 0, 0, false
			}
			i++
		}
		start, n := i, 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' && i-start < 3 {
			n = n*10 + int(s[i]-'0')
			i++
		}
		if i == start || n > 255 || i-start > 1 && s[start] == '0' {
			return ip, 0, 0, false
		}
		ip[k] = byte(n)
	}
	if i == len(s) {
		return ip, i, 0, true
	}
	if s[i] != ':' || len(s)-i-1 < 1 || len(s)-i-1 > 5 || s[i+1] == '0' {
		return ip, 0, 0, false
	}
	for j := i + 1; j < len(s); j++ {
		if s[j] < '0' || s[j] > '9' {
			return ip, 0, 0, false
		}
		port = port*10 + int(s[j]-'0')
	}
	return ip, i, port, port <= 65535
}

// parseAddress is ParseAddress's general path.
func parseAddress(s string) (Address, error) {
	if s == "" {
		return Address{}, errors.New("must not be empty")
	}
	if len(s) > MaxLen {
		return Address{}, errors.New("must be at most 100 characters")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			// The value itself is not echoed: it holds a byte that could forge a line.
			return Address{}, errors.New("must not contain spaces, control or non-ASCII characters (found byte 0x" +
				strconv.FormatUint(uint64(c), 16) + " at position " + strconv.Itoa(i+1) + ")")
		}
	}
	host, portStr, hasPort, err := splitHostPort(s)
	if err != nil {
		return Address{}, err
	}
	var a Address
	if hasPort {
		p, err := parsePort(portStr)
		if err != nil {
			return Address{}, err
		}
		a.Port = p
	}
	if strings.HasPrefix(s, "[") {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return Address{}, errors.New("'[" + host + "]' is not an IPv6 address (zones are not allowed)")
		}
		a.Host, a.IP = host, ip
		return a, nil
	}
	if looksNumeric(host) {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is4() {
			return Address{}, errors.New("'" + host + "' is not a valid IPv4 address (write it as four decimal numbers 0-255 without leading zeros, e.g. 10.1.2.3)")
		}
		a.Host, a.IP = host, ip
		return a, nil
	}
	if err := dnsName(host); err != nil {
		return Address{}, err
	}
	a.Host = host
	return a, nil
}

// splitHostPort separates an optional port. A bare IPv6 address (colons without
// brackets) is refused with a hint, since its last group would read as a port.
func splitHostPort(s string) (host, port string, hasPort bool, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", false, errors.New("missing ']' after the IPv6 address")
		}
		host, rest := s[1:end], s[end+1:]
		switch {
		case rest == "":
			return host, "", false, nil
		case rest[0] == ':':
			return host, rest[1:], true, nil
		default:
			return "", "", false, errors.New("unexpected text after ']': use [IPv6]:port")
		}
	}
	switch strings.Count(s, ":") {
	case 0:
		return s, "", false, nil
	case 1:
		i := strings.IndexByte(s, ':')
		return s[:i], s[i+1:], true, nil
	default:
		return "", "", false, errors.New("an IPv6 address must be written in brackets, e.g. [2001:db8::1]:8080")
	}
}

// parsePort reads a port of 1–65535 written without leading zeros, so that the
// address reads back exactly as it was accepted ("h:080" would be stored as one
// thing and mean another).
func parsePort(p string) (int, error) {
	if p == "" {
		return 0, errors.New("port is empty after ':'")
	}
	n := 0
	ok := len(p) <= 5 && p[0] != '0'
	for i := 0; ok && i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			ok = false
		}
		n = n*10 + int(p[i]-'0')
	}
	if !ok || n > 65535 {
		return 0, errors.New("port '" + p + "' must be a number from 1 to 65535 without leading zeros")
	}
	return n, nil
}

// looksNumeric is true when h can only be meant as an IPv4 literal: its last label is
// all digits (RFC 1123 forbids an all-numeric top-level label), or every label is a
// number in a form inet_aton reads (decimal, octal, 0x hex). The second case keeps
// "0x7f000001" or "0x7f.1", which many resolvers turn into 127.0.0.1, from passing as
// a DNS name around the checks on IP targets.
func looksNumeric(h string) bool {
	last := h[strings.LastIndexByte(h, '.')+1:]
	if last != "" && allDigits(last) {
		return true
	}
	for label := range strings.SplitSeq(h, ".") {
		if !allDigits(label) && !isHexNumber(label) {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isHexNumber is inet_aton's hex form: 0x or 0X, then hex digits (possibly none).
func isHexNumber(s string) bool {
	if len(s) < 2 || s[0] != '0' || s[1] != 'x' && s[1] != 'X' {
		return false
	}
	for i := 2; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func dnsName(h string) error {
	if h == "" {
		return errors.New("host is empty")
	}
	if len(h) > 253 {
		return errors.New("DNS name must be at most 253 characters")
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" {
			return errors.New("'" + h + "' has an empty label (check for '..' or a leading or trailing '.')")
		}
		if len(label) > 63 {
			return errors.New("DNS label '" + label + "' is longer than 63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("DNS label '" + label + "' must not start or end with '-'")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return errors.New("'" + h + "' is not an IPv4 address, [IPv6] address or DNS name (letters, digits, '-' and '.' only)")
			}
		}
	}
	return nil
}
