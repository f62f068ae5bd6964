package server

import (
	"fmt"
	"net/netip"
	"strings"

	"switchyard/internal/validate"
)

// Policy is the SSRF guard applied to every target address a write asks for. The
// proxy sends client requests to registered targets, so a target that reaches the
// proxy host itself, a cloud metadata service or a multicast group would let anyone
// who can register a server reach things they should not.
//
// Refused unless a range in Allow covers them:
//   - loopback (127.0.0.0/8, ::1) and the DNS name "localhost" (and *.localhost,
//     RFC 6761), which is treated as 127.0.0.1;
//   - link-local unicast (169.254.0.0/16, which holds the cloud metadata address
//     169.254.169.254, and fe80::/10);
//   - unspecified and "this network" addresses (0.0.0.0/8, ::), which Linux routes to
//     the local host;
//   - multicast (224.0.0.0/4, ff00::/8) and the broadcast address 255.255.255.255.
//
// IPv4-mapped IPv6 addresses ([::ffff:127.0.0.1]) are judged as the IPv4 address
// they carry. When Allow is not empty, IP targets outside every range are refused as
// well. Other DNS names are accepted: the proxy resolves them when it connects, so
// what they point to is the resolver's business, not something the registrar can
// pin down at write time.
type Policy struct {
	Allow []netip.Prefix
}

// ParseAllowCIDRs reads the -allow-cidr list: comma-separated CIDR ranges; a bare IP
// stands for that single address.
func ParseAllowCIDRs(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("-allow-cidr: %q is not a CIDR range (e.g. 10.0.0.0/8, fd00::/8) or an IP address", item)
		}
		ip = ip.Unmap()
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}

var thisNetwork = netip.MustParsePrefix("0.0.0.0/8")

// Check returns nil when a write may use a as a target, else why not (the message
// is meant for the person registering the server).
func (p Policy) Check(a validate.Address) error {
	ip := a.IP
	if !a.IsIP() {
		h := strings.ToLower(a.Host)
		if h != "localhost" && !strings.HasSuffix(h, ".localhost") {
			return nil
		}
		ip = netip.MustParseAddr("127.0.0.1")
		if !p.covered(ip) {
			return fmt.Errorf("%q names this machine (loopback), which targets may not reach unless -allow-cidr covers 127.0.0.1", a.Host)
		}
		return nil
	}
	ip = ip.Unmap()
	if kind := specialKind(ip); kind != "" {
		if !p.covered(ip) {
			return fmt.Errorf("%s is a %s address, which targets may not use unless -allow-cidr covers it", ip, kind)
		}
		return nil
	}
	if len(p.Allow) > 0 && !p.covered(ip) {
		return fmt.Errorf("%s is outside every -allow-cidr range (%s)", ip, p.allowList())
	}
	return nil
}

func specialKind(ip netip.Addr) string {
	switch {
	case ip.IsLoopback():
		return "loopback"
	case ip.IsLinkLocalUnicast():
		return "link-local (cloud metadata lives here)"
	case ip.IsUnspecified() || ip.Is4() && thisNetwork.Contains(ip):
		return "unspecified (\"this host\")"
	case ip.IsMulticast():
		return "multicast"
	case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "broadcast"
	}
	return ""
}

func (p Policy) covered(ip netip.Addr) bool {
	for _, r := range p.Allow {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}

func (p Policy) allowList() string {
	s := make([]string, len(p.Allow))
	for i, r := range p.Allow {
		s[i] = r.String()
	}
	return strings.Join(s, ", ")
}
