package devproxy

import (
	"net/netip"

	"switchyard/internal/targetpolicy"
)

// TargetPolicy is what the dynamic forward proxy's dialer may connect to, checked on
// every resolved address of a target (an IP literal, or each address a DNS name
// resolves to at connect time, so a name pointing at 127.0.0.1 or at a metadata
// service is caught where the registrar cannot see it). It is the registrar's own
// target policy (internal/targetpolicy, the same rules and the same meaning of
// -allow-cidr), plus the Envoy config's resolved_address_filter (the DNS cache's own
// SSRF guard), which drops what it matches unless Allow covers the address.
type TargetPolicy struct {
	Allow []netip.Prefix
}

// ParseAllowCIDRs reads an -allow-cidr list exactly as the registrar does.
func ParseAllowCIDRs(list string) ([]netip.Prefix, error) { return targetpolicy.ParseAllow(list) }

// check returns nil when the dialer may connect to ip, else the kind of address it
// is (said to the client; the address itself is not).
func (p TargetPolicy) check(ip netip.Addr, fileFilter *addressMatcher) error {
	if err := (targetpolicy.Policy{Allow: p.Allow}).CheckResolved("", ip); err != nil {
		if kind := targetpolicy.Special(ip); kind != "" {
			return &targetRefusedError{reason: kind + "; allow it with -allow-cidr"}
		}
		return &targetRefusedError{reason: "address outside every -allow-cidr range"}
	}
	if fileFilter.matches(ip) && !p.covers(ip) {
		return &targetRefusedError{reason: "address in the DNS cache's resolved_address_filter"}
	}
	return nil
}

// covers reports whether a range of Allow covers ip (judged as the IPv4 address it
// carries when it is IPv4-mapped).
func (p TargetPolicy) covers(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, r := range p.Allow {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}
