// Package targetpolicy is the SSRF guard for targets: which addresses a registered
// server may send the proxy to. The proxy forwards client requests to whatever target
// a server name is registered with, so a target that reaches the proxy host itself, a
// cloud metadata service or a multicast group would let anyone who can register a
// server reach what they should not.
//
// The same rules run in two places:
//   - the registrar, at write time, on the address as written (Policy.Check), so a
//     bad IP target or a refused DNS name never enters the table;
//   - a proxy's dialer, at connect time, on every address a DNS name resolved to
//     (Policy.CheckResolved), since only then is it known where a name leads.
//
// It is pure Go with no dependencies beyond the standard library.
package targetpolicy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"switchyard/internal/validate"
)

// Policy decides which targets are allowed. The zero Policy allows every IP address
// outside the special ranges and every DNS name (the proxy checks what a name
// resolves to when it connects).
//
// Special ranges (loopback, link-local, unspecified, multicast, broadcast and the
// cloud metadata and platform addresses listed in ranges.go) are refused unless a
// range in Allow names them explicitly: a listed range names a special address
// explicitly when it contains the address and lies entirely inside the narrowest
// special range that holds it. So 127.0.0.0/8 or 127.0.0.1/32 allows 127.0.0.1, but
// 0.0.0.0/0 or 96.0.0.0/3 does not; 169.254.0.0/16 allows 169.254.1.1 but not the
// metadata address 169.254.169.254, which only a range inside 169.254.169.254/32
// (that address itself) allows.
//
// When Allow is not empty, IP addresses outside every range in it are refused too.
//
// An IPv6 address that carries an IPv4 address (IPv4-mapped ::ffff:a.b.c.d,
// IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, 6to4 2002::/16,
// Teredo 2001::/32) is judged as the IPv4 address it carries, in every rule.
type Policy struct {
	// Allow is the list of ranges from ParseAllow. Ranges in IPv4-mapped form are
	// read as the IPv4 range they stand for.
	Allow []netip.Prefix
	// DNS says whether targets may be DNS names at all.
	DNS DNSRule
	// DNSSuffixes, when not empty, limits DNS names to those equal to or under one of
	// them (see ParseDNSSuffixes).
	DNSSuffixes []string
}

// DNSRule says whether targets may be DNS names.
type DNSRule int

const (
	// DNSAllow accepts DNS names (subject to DNSSuffixes and the loopback and
	// metadata names): the proxy checks what they resolve to when it connects.
	DNSAllow DNSRule = iota
	// DNSDeny accepts IP addresses only.
	DNSDeny
)

func (r DNSRule) String() string {
	if r == DNSDeny {
		return "deny"
	}
	return "allow"
}

// ParseDNSRule reads -dns-targets: "allow" (also "") or "deny".
func ParseDNSRule(s string) (DNSRule, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "allow":
		return DNSAllow, nil
	case "deny":
		return DNSDeny, nil
	}
	return DNSAllow, fmt.Errorf("-dns-targets: %q is neither allow nor deny", s)
}

// ParseAllow reads the -allow-cidr list: comma-separated CIDR ranges; a bare IP
// address stands for that single address. Ranges in IPv4-mapped form
// (::ffff:10.0.0.0/104) are turned into the IPv4 range they stand for (10.0.0.0/8),
// since targets in that form are judged as IPv4 addresses. Ranges inside another
// form that carries IPv4 addresses (NAT64, 6to4, Teredo, IPv4-compatible) are
// refused, since they could never match: list the IPv4 range instead.
func ParseAllow(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		r, err := netip.ParsePrefix(item)
		if err != nil {
			ip, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return nil, fmt.Errorf("-allow-cidr: %q is not a CIDR range (e.g. 10.0.0.0/8, fd00::/8) or an IP address", item)
			}
			if ip.Zone() != "" {
				return nil, fmt.Errorf("-allow-cidr: %q has a zone (%%%s); write the address without it", item, ip.Zone())
			}
			r = netip.PrefixFrom(ip, ip.BitLen())
		}
		r = unmapPrefix(r.Masked())
		if e, ok := embeddingOf(r); ok {
			return nil, fmt.Errorf("-allow-cidr: %q lies in the %s range %s, whose addresses are judged as the IPv4 address they carry; list that IPv4 range instead (e.g. 10.0.0.0/8)", item, e.name, e.prefix)
		}
		out = append(out, r)
	}
	return out, nil
}

// unmapPrefix turns an IPv4-mapped range (::ffff:a.b.c.d/96 or longer) into the IPv4
// range it stands for; other ranges are returned as they are.
func unmapPrefix(r netip.Prefix) netip.Prefix {
	if r.Addr().Is4In6() && r.Bits() >= 96 {
		return netip.PrefixFrom(r.Addr().Unmap(), r.Bits()-96)
	}
	return r
}

// ParseDNSSuffixes reads the -allow-dns-suffix list: comma-separated DNS names. A
// target name is allowed when it equals a suffix or ends with "." and a suffix
// (label-wise: "example.com" allows "api.example.com", not "badexample.com"). A
// leading "." is optional and ignored; matching ignores case.
func ParseDNSSuffixes(list string) ([]string, error) {
	var out []string
	for _, item := range strings.Split(list, ",") {
		s := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(item), "."))
		if s == "" {
			continue
		}
		a, err := validate.ParseAddress(s)
		if err != nil || a.IsIP() || a.Port != 0 {
			return nil, fmt.Errorf("-allow-dns-suffix: %q is not a DNS name such as .internal.example.com", strings.TrimSpace(item))
		}
		out = append(out, s)
	}
	return out, nil
}

// loopbackNames are names that stand for this machine whatever the resolver says:
// "localhost" and everything under ".localhost" (RFC 6761 §6.3), and the names the
// stock /etc/hosts of Debian (ip6-localhost, ip6-loopback) and Red Hat
// (localhost.localdomain, localhost4, localhost6 and their .localdomain forms) give
// to the loopback addresses.
var loopbackNames = map[string]netip.Addr{
	"localhost":               netip.MustParseAddr("127.0.0.1"),
	"localhost.localdomain":   netip.MustParseAddr("127.0.0.1"),
	"localhost4":              netip.MustParseAddr("127.0.0.1"),
	"localhost4.localdomain4": netip.MustParseAddr("127.0.0.1"),
	"localhost6":              netip.MustParseAddr("::1"),
	"localhost6.localdomain6": netip.MustParseAddr("::1"),
	"ip6-localhost":           netip.MustParseAddr("::1"),
	"ip6-loopback":            netip.MustParseAddr("::1"),
}

// metadataNames are the documented names of cloud metadata services, judged as the
// address they resolve to: Google Cloud (metadata.google.internal, metadata.goog),
// AWS (instance-data, instance-data.ec2.internal), Tencent Cloud
// (metadata.tencentyun.com).
var metadataNames = map[string]netip.Addr{
	"metadata.google.internal":   netip.MustParseAddr("169.254.169.254"),
	"metadata.goog":              netip.MustParseAddr("169.254.169.254"),
	"instance-data":              netip.MustParseAddr("169.254.169.254"),
	"instance-data.ec2.internal": netip.MustParseAddr("169.254.169.254"),
	"metadata.tencentyun.com":    netip.MustParseAddr("169.254.0.23"),
}

// NameStandsFor gives the address a DNS name is known to stand for whatever DNS
// says (loopback and cloud metadata names), if it is one. Case is ignored.
func NameStandsFor(name string) (netip.Addr, bool) {
	name = strings.ToLower(name)
	if ip, ok := loopbackNames[name]; ok {
		return ip, true
	}
	if strings.HasSuffix(name, ".localhost") {
		return loopbackNames["localhost"], true
	}
	ip, ok := metadataNames[name]
	return ip, ok
}

// Check returns nil when a write may use a as a target, else why not. The message is
// meant for the person registering the server; it names the address and the flag
// that would allow it.
func (p Policy) Check(a validate.Address) error {
	if a.IsIP() {
		return p.checkIP(a.IP)
	}
	name := strings.ToLower(a.Host)
	if p.DNS == DNSDeny {
		return fmt.Errorf("%q is a DNS name and this registrar takes IP addresses only (-dns-targets=deny); register the server's IP address", a.Host)
	}
	if len(p.DNSSuffixes) > 0 && !p.suffixAllowed(name) {
		return fmt.Errorf("%q is not under any allowed DNS suffix (-allow-dns-suffix %s)", a.Host, strings.Join(p.DNSSuffixes, ","))
	}
	if ip, ok := NameStandsFor(name); ok {
		if err := p.checkIP(ip); err != nil {
			return fmt.Errorf("%q stands for %s: %w", a.Host, ip, err)
		}
	}
	return nil
}

func (p Policy) suffixAllowed(name string) bool {
	for _, s := range p.DNSSuffixes {
		s = strings.ToLower(strings.TrimPrefix(s, "."))
		if name == s || strings.HasSuffix(name, "."+s) {
			return true
		}
	}
	return false
}

// checkIP judges ip or, when it carries IPv4 addresses, each of them instead.
func (p Policy) checkIP(ip netip.Addr) error {
	ip = ip.WithZone("")
	if v4s, form, ok := carried(ip); ok {
		for _, v4 := range v4s {
			if r := p.judge(v4); r != nil {
				if form != "IPv4-mapped" { // the same address in other notation
					r.via = " (carried by the " + form + " address " + ip.String() + ")"
				}
				return r
			}
		}
		return nil
	}
	if r := p.judge(ip); r != nil {
		return r
	}
	return nil
}

// judge applies the rules to ip, which carries no other address.
func (p Policy) judge(ip netip.Addr) *refusal {
	if s, ok := narrowestSpecial(ip); ok {
		if p.namedExplicitly(ip, s.prefix) {
			return nil
		}
		return &refusal{ip: ip, kind: s.kind, special: s.prefix}
	}
	if len(p.Allow) > 0 && !p.covered(ip) {
		return &refusal{ip: ip, allow: p.Allow}
	}
	return nil
}

func (p Policy) namedExplicitly(ip netip.Addr, within netip.Prefix) bool {
	for _, r := range p.Allow {
		r = unmapPrefix(r)
		if r.Contains(ip) && r.Bits() >= within.Bits() {
			return true
		}
	}
	return false
}

func (p Policy) covered(ip netip.Addr) bool {
	for _, r := range p.Allow {
		if unmapPrefix(r).Contains(ip) {
			return true
		}
	}
	return false
}

// refusal is why an IP address was refused, worded for the registrar's user.
type refusal struct {
	ip      netip.Addr
	via     string       // how the target carried ip, when it is not ip itself
	kind    string       // set when ip is in a special range
	special netip.Prefix // that range
	allow   []netip.Prefix
}

func (r *refusal) Error() string {
	if r.kind != "" {
		eg := r.special.String()
		if r.special.Bits() < r.ip.BitLen() {
			eg += " or " + netip.PrefixFrom(r.ip, r.ip.BitLen()).String()
		}
		return fmt.Sprintf("%s%s is %s, which targets may not use unless -allow-cidr names it explicitly (e.g. %s; a wider range such as 0.0.0.0/0 does not count)", r.ip, r.via, r.kind, eg)
	}
	s := make([]string, len(r.allow))
	for i, a := range r.allow {
		s[i] = unmapPrefix(a).String()
	}
	return fmt.Sprintf("%s%s is outside every -allow-cidr range (%s)", r.ip, r.via, strings.Join(s, ", "))
}

// Refused is CheckResolved's answer: its message names the server and never the
// address (a proxy shows it to clients, who must not learn where targets are); IP
// and Reason are for the proxy's own log.
type Refused struct {
	ServerName string
	IP         netip.Addr
	Reason     string // why IP is refused, naming it; for logs only
}

func (e *Refused) Error() string {
	return "the target of server '" + e.ServerName + "' resolved to an address the target policy refuses"
}

// CheckResolved is the connect-time check: nil when a proxy may connect to ip, an
// address the target of serverName resolved to, else a *Refused. A dialer should call
// it for every resolved address and connect only to those it allows.
func (p Policy) CheckResolved(serverName string, ip netip.Addr) error {
	if !ip.IsValid() {
		return &Refused{ServerName: serverName, IP: ip, Reason: "no address"}
	}
	if err := p.checkIP(ip); err != nil {
		return &Refused{ServerName: serverName, IP: ip, Reason: err.Error()}
	}
	return nil
}

// Special reports the kind of special range ip is in ("a loopback address"),
// judging an address that carries an IPv4 address by what it carries, or "" when
// ip is in none. Policies do not change the answer.
func Special(ip netip.Addr) string {
	var r *refusal
	if errors.As(Policy{}.checkIP(ip), &r) {
		return r.kind
	}
	return ""
}
