package validate

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// The fuzz targets hold the two rules to their text (ServerName's and ParseAddress's
// doc comments) with oracles written independently of the code under test: whatever is accepted
// must match the rule, and the two forms of each check must agree. Run each for
// longer with, e.g.:
//
//	go test -run '^$' -fuzz '^FuzzServerName$' -fuzztime 30s ./internal/validate/
//	go test -run '^$' -fuzz '^FuzzParseAddress$' -fuzztime 30s ./internal/validate/
//
// Inputs the fuzzer found are kept in testdata/fuzz/<target>/ and run by every
// `go test` as regression cases.

// nameRule is ServerName's "1–100 characters of A-Z a-z 0-9 . _ -".
var nameRule = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

func FuzzServerName(f *testing.F) {
	for _, s := range []string{
		"web-1", "a", "A.b_c-9", strings.Repeat("x", 100), strings.Repeat("x", 101), "",
		"web 1", "web/1", "wéb", "web\r\n", "a\x00b", "ｗeb", "wеb" /* Cyrillic е */, "..", "-",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ServerName(s)
		if (err == nil) != IsServerName(s) {
			t.Fatalf("ServerName(%q) = %v but IsServerName = %v", s, err, IsServerName(s))
		}
		if (err == nil) != nameRule.MatchString(s) {
			t.Fatalf("ServerName(%q) = %v, but the rule says accepted=%v", s, err, nameRule.MatchString(s))
		}
		if err != nil && err.Error() == "" {
			t.Fatalf("ServerName(%q) refused it without a reason", s)
		}
	})
}

// dnsLabel is RFC 1123's label: letters, digits and '-', 1–63 long, not starting or
// ending with '-'.
var dnsLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// numericLabel is what inet_aton (and so many resolvers) reads as part of an IPv4
// address: decimal, octal (leading 0) or hex (0x...).
var numericLabel = regexp.MustCompile(`^([0-9]+|0[xX][0-9A-Fa-f]*)$`)

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"10.1.2.3", "10.1.2.3:8080", "[2001:db8::1]", "[2001:db8::1]:9000", "[::1]", "[::ffff:127.0.0.1]:80",
		"logs.example.com", "web-1.internal:65535", "host:1", "10.1.2.3:0", "10.1.2.3:65536",
		"10.1.2.3:080", "999.1.1.1", "010.1.2.3", "2001:db8::1", "::1", "[fe80::1%eth0]", "[10.1.2.3]",
		"a..b", "-a.com", "a_b.com", "host\r\n", "h\x00", "例え.jp", "ｗeb.com", "0x7f000001", "0x7f.1",
		"2130706433", "1.2.3", "[::1]x", "255.255.255.255:65535", "1.2.3.4:", "1.2.3.4.5", "1.2.3.256", "0.0.0.0:1", strings.Repeat("a", 63) + ".com", strings.Repeat("a", 101),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if ip, host, port, ok := ipv4Port(s); ok {
			fast := Address{Host: s[:host], IP: netip.AddrFrom4(ip), Port: port}
			if slow, err := parseAddress(s); err != nil || slow != fast {
				t.Fatalf("%q: the IPv4 fast path gives %+v, the general path %+v, %v", s, fast, slow, err)
			}
		}
		if ValidAddress(s) != (err == nil) {
			t.Fatalf("ValidAddress(%q) = %v, ParseAddress: %v", s, ValidAddress(s), err)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ParseAddress(%q) refused it without a reason", s)
			}
			return
		}
		checkAccepted(t, s, a)
		again, err := ParseAddress(a.String())
		if err != nil || again != a {
			t.Fatalf("ParseAddress(%q) = %+v, but its String() %q parses to %+v, %v", s, a, a.String(), again, err)
		}
	})
}

// FuzzServiceName holds ServiceName to its rule, written here with the unicode
// package's categories rather than the code's own checks.
func FuzzServiceName(f *testing.F) {
	for _, s := range []string{
		"logs", "결제 서비스", "", " ", strings.Repeat("ü", 100), strings.Repeat("ü", 101), "a\r\nb",
		"billing \u202e10.0.0.1 :kcatta", "a\u200db", "\ufeff", "a\ufffd", "a\xffb", "\xed\xa0\x80",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ServiceName(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ServiceName(%q) refused it without a reason", s)
			}
			return
		}
		if !utf8.ValidString(s) || strings.TrimSpace(s) == "" || utf8.RuneCountInString(s) > 100 {
			t.Fatalf("ServiceName accepted %q", s)
		}
		for _, r := range s {
			if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Cs) || r == utf8.RuneError {
				t.Fatalf("ServiceName accepted %q holding %U", s, r)
			}
		}
	})
}

// checkAccepted holds an accepted address to ParseAddress's rule.
func checkAccepted(t *testing.T, s string, a Address) {
	t.Helper()
	if a.String() != s {
		t.Fatalf("ParseAddress(%q).String() = %q, want the input back", s, a.String())
	}
	if len(s) > MaxLen {
		t.Fatalf("ParseAddress accepted %d bytes (%q), over %d", len(s), s, MaxLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			t.Fatalf("ParseAddress(%q) accepted byte %#x at %d", s, s[i], i)
		}
	}
	if a.Port < 0 || a.Port > 65535 {
		t.Fatalf("ParseAddress(%q).Port = %d", s, a.Port)
	}
	host := s
	if a.Port != 0 {
		suffix := ":" + strconv.Itoa(a.Port)
		if !strings.HasSuffix(s, suffix) {
			t.Fatalf("ParseAddress(%q).Port = %d, not what the input ends with", s, a.Port)
		}
		host = strings.TrimSuffix(s, suffix)
	}
	switch {
	case strings.HasPrefix(host, "["):
		inner := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		ip, err := netip.ParseAddr(inner)
		if !strings.HasSuffix(host, "]") || err != nil || !ip.Is6() || ip.Zone() != "" {
			t.Fatalf("ParseAddress(%q) accepted %q as a bracketed IPv6 address", s, host)
		}
		if a.Host != inner || a.IP != ip {
			t.Fatalf("ParseAddress(%q) = %+v, want host %q ip %v", s, a, inner, ip)
		}
	case a.IsIP():
		if !a.IP.Is4() || a.Host != a.IP.String() || a.Host != host {
			t.Fatalf("ParseAddress(%q) = %+v: an unbracketed IP must be dotted-decimal IPv4", s, a)
		}
	default:
		if a.Host != host {
			t.Fatalf("ParseAddress(%q).Host = %q, want %q", s, a.Host, host)
		}
		labels := strings.Split(host, ".")
		allNumeric := true
		for _, l := range labels {
			if !dnsLabel.MatchString(l) {
				t.Fatalf("ParseAddress(%q) accepted DNS name %q with label %q", s, host, l)
			}
			allNumeric = allNumeric && numericLabel.MatchString(l)
		}
		if allNumeric {
			t.Fatalf("ParseAddress(%q) accepted %q as a DNS name, but resolvers read it as an IPv4 address", s, host)
		}
		if regexp.MustCompile(`^[0-9]+$`).MatchString(labels[len(labels)-1]) {
			t.Fatalf("ParseAddress(%q) accepted %q, whose top-level label is all digits", s, host)
		}
	}
}
