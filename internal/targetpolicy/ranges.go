package targetpolicy

import "net/netip"

// special is a range whose addresses no target may use unless an allowed range
// names it explicitly (see Policy).
type special struct {
	prefix netip.Prefix
	kind   string // what the range is, for messages: "a loopback address"
}

func sp(prefix, kind string) special { return special{netip.MustParsePrefix(prefix), kind} }

// specials are the ranges a target must not reach unless named explicitly: the proxy
// host itself, its neighbours on the link, cloud metadata and platform services (which
// hand out credentials to whoever runs on the machine), and addresses that are not one
// host. Some lie inside others (169.254.169.254 in 169.254.0.0/16); an address is
// judged by the narrowest range that holds it.
//
// Cloud endpoints, as their operators document them:
//   - 169.254.169.254: instance metadata of AWS EC2 (IMDS), Google Cloud
//     (metadata.google.internal), Azure (IMDS), Oracle Cloud (/opc/v2), DigitalOcean,
//     Hetzner, OpenStack and most others.
//   - 169.254.170.2: AWS ECS task metadata and task-role credentials.
//   - 169.254.170.23 and fd00:ec2::23: AWS EKS Pod Identity Agent (credentials),
//     docs.aws.amazon.com/eks/latest/userguide/pod-id-agent-setup.html.
//   - fd00:ec2::254: AWS IMDS over IPv6 (HttpProtocolIpv6), EC2 User Guide,
//     "Instance metadata service endpoints".
//   - fd20:ce::254: Google Cloud's metadata server for IPv6-only instances
//     (cloud.google.com/compute/docs/metadata/querying-metadata).
//   - 100.100.100.200: Alibaba Cloud ECS metadata (alibabacloud.com/help/ecs,
//     "Instance metadata"); it lies in the carrier-grade NAT range 100.64.0.0/10, which
//     stays allowed (Tailscale and others use it).
//   - 169.254.0.23: Tencent Cloud metadata (metadata.tencentyun.com).
//   - 192.0.0.192: Oracle Cloud's older metadata address, still listed by SSRF
//     references (PayloadsAllTheThings, "Cloud Instances").
//   - 168.63.129.16: Azure WireServer, the platform endpoint that serves a VM its
//     extension settings and certificates (learn.microsoft.com, "What is IP address
//     168.63.129.16?").
//
// OpenStack's IPv6 metadata address fe80::a9fe:a9fe lies in fe80::/10.
var specials = []special{
	sp("0.0.0.0/8", "an unspecified (\"this network\") address, which Linux routes to the local host"),
	sp("127.0.0.0/8", "a loopback address"),
	sp("169.254.0.0/16", "a link-local address (cloud metadata services live here)"),
	sp("169.254.169.254/32", "the cloud instance metadata address (link-local)"),
	sp("169.254.170.2/32", "the AWS ECS task metadata and credentials address (link-local)"),
	sp("169.254.170.23/32", "the AWS EKS Pod Identity credentials address (link-local)"),
	sp("169.254.0.23/32", "the Tencent Cloud metadata address (link-local)"),
	sp("100.100.100.200/32", "the Alibaba Cloud metadata address"),
	sp("192.0.0.192/32", "the Oracle Cloud metadata address"),
	sp("168.63.129.16/32", "the Azure WireServer platform address"),
	sp("224.0.0.0/4", "a multicast address"),
	sp("255.255.255.255/32", "the broadcast address"),
	sp("::/128", "the unspecified address, which Linux routes to the local host"),
	sp("::1/128", "a loopback address"),
	sp("fe80::/10", "a link-local address"),
	sp("ff00::/8", "a multicast address"),
	sp("fd00:ec2::254/128", "the AWS instance metadata (IMDS) IPv6 address"),
	sp("fd00:ec2::23/128", "the AWS EKS Pod Identity credentials IPv6 address"),
	sp("fd20:ce::254/128", "the Google Cloud metadata IPv6 address"),
}

// narrowestSpecial is the narrowest special range holding ip (unzoned), if any.
func narrowestSpecial(ip netip.Addr) (special, bool) {
	var best special
	found := false
	for _, s := range specials {
		if s.prefix.Contains(ip) && (!found || s.prefix.Bits() > best.prefix.Bits()) {
			best, found = s, true
		}
	}
	return best, found
}

// Forms of IPv6 address that carry an IPv4 address. Depending on the network they
// reach that IPv4 host (NAT64 gateways translate; a 6to4 or Teredo tunnel, or a
// stack that still honours IPv4-compatible addresses, delivers to it), so each is
// judged as the IPv4 address it carries, never as the IPv6 address it appears to be.
var (
	mapped     = netip.MustParsePrefix("::ffff:0:0/96")   // RFC 4291 §2.5.5.2
	translated = netip.MustParsePrefix("::ffff:0:0:0/96") // RFC 2765 (SIIT) "IPv4-translated"
	compatible = netip.MustParsePrefix("::/96")           // RFC 4291 §2.5.5.1, deprecated
	selfOnly   = netip.MustParsePrefix("::/127")          // :: and ::1 are IPv6's own, not IPv4-compatible
	nat64      = netip.MustParsePrefix("64:ff9b::/96")    // RFC 6052 well-known prefix
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")  // RFC 8215 local-use prefix
	sixToFour  = netip.MustParsePrefix("2002::/16")       // RFC 3056
	teredo     = netip.MustParsePrefix("2001::/32")       // RFC 4380
)

// embedding names the form an IPv6 address carries an IPv4 address in.
type embedding struct {
	prefix netip.Prefix
	name   string
}

var embeddings = []embedding{
	{mapped, "IPv4-mapped"},
	{translated, "IPv4-translated"},
	{nat64, "NAT64"},
	{nat64Local, "NAT64 (local-use prefix)"},
	{sixToFour, "6to4"},
	{teredo, "Teredo"},
	{compatible, "IPv4-compatible"},
}

// carried gives the IPv4 addresses an IPv6 address stands for and the name of its
// form; ok is false when ip carries none (then ip is judged as itself).
//
// The local-use NAT64 prefix 64:ff9b:1::/48 may be subdivided into a /48, /56, /64 or
// /96 NAT64 prefix (RFC 6052 §2.2 puts the IPv4 bits at a different place for each),
// and nothing in the address says which, so every reading that is well-formed for its
// prefix length is returned and each must pass. (A translator that accepts a nonzero
// suffix after a /48-/64 prefix could still be led elsewhere; such set-ups are rare.) For Teredo the client's IPv4 address (the last 32 bits, inverted) is the one
// packets are delivered to.
func carried(ip netip.Addr) (v4 []netip.Addr, form string, ok bool) {
	if !ip.Is6() || selfOnly.Contains(ip) {
		return nil, "", false
	}
	b := ip.As16()
	at := func(i, j, k, l int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[j], b[k], b[l]}) }
	for _, e := range embeddings {
		if !e.prefix.Contains(ip) {
			continue
		}
		switch e.prefix {
		case sixToFour:
			v4 = []netip.Addr{at(2, 3, 4, 5)}
		case teredo:
			v4 = []netip.Addr{netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})}
		case nat64Local:
			v4 = nil
			// The /48, /56 and /64 readings count only in the form RFC 6052
			// requires: bits 64-71 zero and zeros after the IPv4 address.
			if b[8] == 0 && zero(b[11:]) {
				v4 = append(v4, at(6, 7, 9, 10))
			}
			if b[8] == 0 && zero(b[12:]) {
				v4 = append(v4, at(7, 9, 10, 11))
			}
			if b[8] == 0 && zero(b[13:]) {
				v4 = append(v4, at(9, 10, 11, 12))
			}
			v4 = append(v4, at(12, 13, 14, 15))
		default:
			v4 = []netip.Addr{at(12, 13, 14, 15)}
		}
		return v4, e.name, true
	}
	return nil, "", false
}

// embeddingOf is the embedding form whose range holds r entirely, if any: such a
// range could never match, since its addresses are judged as IPv4 addresses.
func embeddingOf(r netip.Prefix) (embedding, bool) {
	if r.Addr().Is4() || r.Bits() >= selfOnly.Bits() && selfOnly.Contains(r.Addr()) {
		return embedding{}, false
	}
	for _, e := range embeddings {
		if r.Bits() >= e.prefix.Bits() && e.prefix.Contains(r.Addr()) {
			return e, true
		}
	}
	return embedding{}, false
}

func zero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
