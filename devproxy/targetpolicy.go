package devproxy

import (
	"fmt"
	"net/netip"
	"strings"
)

// TargetPolicy is what the dynamic forward proxy's dialer may connect to, checked on
// every resolved address of a target (an IP literal, or each address a DNS name
// resolves to at connect time, so a name pointing at 127.0.0.1 or at a metadata
// service is caught where the registrar cannot see it). It mirrors the registrar's
// -allow-cidr rules:
//
//   - refused unless a range of Allow names them: loopback, link-local (169.254/16,
//     fe80::/10, where cloud metadata lives), the other known metadata addresses
//     (AWS fd00:ec2::254, Alibaba 100.100.100.200), unspecified ("this host",
//     0.0.0.0/8, ::), multicast and broadcast. "Names" means a range at least as
//     narrow as the special range: 0.0.0.0/0 does not allow loopback, 127.0.0.0/8 does;
//   - with Allow not empty, any address outside every range is refused too;
//   - an IPv6 address that carries an IPv4 one (IPv4-mapped ::ffff:a.b.c.d,
//     IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16) is judged as the
//     IPv4 address it carries;
//   - the Envoy config's resolved_address_filter (the DNS cache's own SSRF guard)
//     drops what it matches, unless Allow names the address.
type TargetPolicy struct {
	Allow []netip.Prefix
}

// ParseAllowCIDRs reads an -allow-cidr list: comma-separated CIDR ranges or single IP
// addresses. An IPv4-mapped range (::ffff:10.0.0.0/104) is read as the IPv4 range it
// means.
func ParseAllowCIDRs(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			ip, err2 := netip.ParseAddr(item)
			if err2 != nil {
				return nil, fmt.Errorf("-allow-cidr: %q is not a CIDR range (e.g. 10.0.0.0/8, fd00::/8) or an IP address", item)
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return nil, fmt.Errorf("-allow-cidr: %q is wider than the IPv4-mapped range; write the IPv4 range instead", item)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

type specialRange struct {
	prefix netip.Prefix
	kind   string
}

var specialRanges = func() []specialRange {
	var out []specialRange
	for _, r := range []struct{ cidr, kind string }{
		{"127.0.0.0/8", "loopback"},
		{"::1/128", "loopback"},
		{"169.254.0.0/16", "link-local (cloud metadata)"},
		{"fe80::/10", "link-local"},
		{"fd00:ec2::254/128", "cloud metadata (AWS IMDS)"},
		{"100.100.100.200/32", "cloud metadata (Alibaba Cloud)"},
		{"0.0.0.0/8", "unspecified (\"this host\")"},
		{"::/128", "unspecified"},
		{"224.0.0.0/4", "multicast"},
		{"ff00::/8", "multicast"},
		{"255.255.255.255/32", "broadcast"},
	} {
		out = append(out, specialRange{netip.MustParsePrefix(r.cidr), r.kind})
	}
	return out
}()

// embeddedIPv4 gives the IPv4 address an IPv6 address carries, or ip itself.
func embeddedIPv4(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if !ip.Is6() {
		return ip
	}
	b := ip.As16()
	v4 := func(o int) netip.Addr { return netip.AddrFrom4([4]byte{b[o], b[o+1], b[o+2], b[o+3]}) }
	switch {
	case netip.MustParsePrefix("64:ff9b::/96").Contains(ip):
		return v4(12)
	case netip.MustParsePrefix("2002::/16").Contains(ip):
		return v4(2)
	case netip.MustParsePrefix("::/96").Contains(ip) && ip != netip.IPv6Unspecified() && ip != netip.IPv6Loopback():
		return v4(12) // IPv4-compatible (deprecated, still routed by some stacks)
	}
	return ip
}

// check returns nil when the dialer may connect to ip, else the kind of address it
// is (said to the client; the address itself is not).
func (p TargetPolicy) check(ip netip.Addr, fileFilter *addressMatcher) error {
	ip = embeddedIPv4(ip)
	for _, s := range specialRanges {
		if s.prefix.Contains(ip) {
			if !p.names(ip, s.prefix.Bits()) {
				return &targetRefusedError{reason: s.kind + " address; allow it with -allow-cidr"}
			}
			return nil
		}
	}
	if len(p.Allow) > 0 && !p.names(ip, 0) {
		return &targetRefusedError{reason: "address outside every -allow-cidr range"}
	}
	if fileFilter.matches(ip) && !p.names(ip, 0) {
		return &targetRefusedError{reason: "address in the DNS cache's resolved_address_filter"}
	}
	return nil
}

// names reports whether a range of Allow at least minBits long covers ip.
func (p TargetPolicy) names(ip netip.Addr, minBits int) bool {
	for _, r := range p.Allow {
		if r.Bits() >= minBits && r.Contains(ip) {
			return true
		}
	}
	return false
}
