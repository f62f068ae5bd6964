package server

import (
	"errors"
	"net/netip"

	"switchyard/internal/targetpolicy"
)

// Policy is the SSRF guard applied to every target a write asks for; its rules
// (special ranges, what -allow-cidr names explicitly, DNS names) live in
// internal/targetpolicy, which the proxy's dialer applies again to resolved addresses.
type Policy = targetpolicy.Policy

// ParseAllowCIDRs reads the -allow-cidr list (see targetpolicy.ParseAllow).
func ParseAllowCIDRs(list string) ([]netip.Prefix, error) { return targetpolicy.ParseAllow(list) }

// PolicyFrom builds the target policy from the -allow-cidr, -dns-targets and
// -allow-dns-suffix settings; its error names the flag at fault.
func PolicyFrom(allowCIDR, dnsTargets, allowDNSSuffix string) (Policy, error) {
	var p Policy
	var err error
	if p.Allow, err = ParseAllowCIDRs(allowCIDR); err != nil {
		return p, err
	}
	if p.DNS, err = targetpolicy.ParseDNSRule(dnsTargets); err != nil {
		return p, err
	}
	if p.DNSSuffixes, err = targetpolicy.ParseDNSSuffixes(allowDNSSuffix); err != nil {
		return p, err
	}
	if p.DNS == targetpolicy.DNSDeny && len(p.DNSSuffixes) > 0 {
		return p, errors.New("-dns-targets=deny refuses every DNS name, so -allow-dns-suffix would allow none: give one or the other")
	}
	return p, nil
}
