package targetpolicy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"switchyard/internal/validate"
)

func mustAllow(t *testing.T, list string) []netip.Prefix {
	t.Helper()
	allow, err := ParseAllow(list)
	if err != nil {
		t.Fatal(err)
	}
	return allow
}

// Each case is one target under one -allow-cidr list; want is "" when the target is
// allowed, else a piece of the refusal.
func TestCheckIPTargets(t *testing.T) {
	cases := []struct {
		allow, addr, want string
	}{
		// Ordinary targets.
		{"", "10.1.2.3:8080", ""},
		{"", "[2001:db8::1]", ""},
		{"", "100.64.1.1", ""}, // carrier-grade NAT stays allowed
		{"", "192.0.0.8", ""},
		// The special ranges.
		{"", "127.0.0.1", "loopback"},
		{"", "127.9.9.9:80", "loopback"},
		{"", "[::1]:80", "loopback"},
		{"", "169.254.1.1:80", "link-local"},
		{"", "[fe80::1]", "link-local"},
		{"", "0.0.0.0", "unspecified"},
		{"", "0.1.2.3", "unspecified"},
		{"", "[::]", "unspecified"},
		{"", "224.0.0.1", "multicast"},
		{"", "[ff02::1]", "multicast"},
		{"", "255.255.255.255", "broadcast"},
		// Metadata endpoints (16.9).
		{"", "169.254.169.254", "metadata"},
		{"", "[fd00:ec2::254]", "AWS instance metadata"},
		{"", "[fd00:ec2::23]:80", "Pod Identity"},
		{"", "100.100.100.200", "Alibaba"},
		{"", "[::ffff:100.100.100.200]", "Alibaba"},
		{"", "[::ffff:169.254.169.254]:80", "metadata"},
		{"", "192.0.0.192", "Oracle"},
		{"", "168.63.129.16", "WireServer"},
		{"", "169.254.170.2", "ECS"},
		{"", "[fd20:ce::254]", "Google Cloud"},
		// IPv6 forms that carry an IPv4 address are judged as that address.
		{"", "[::ffff:127.0.0.1]", "127.0.0.1 is a loopback address"},
		{"", "[::127.0.0.1]", "carried by the IPv4-compatible address"},
		{"", "[::ffff:0:7f00:1]", "loopback"},
		{"", "[64:ff9b::7f00:1]", "127.0.0.1 (carried by the NAT64 address"},
		{"", "[64:ff9b::a9fe:a9fe]", "metadata"},
		{"", "[64:ff9b:1::7f00:1]", "loopback"},      // /96 reading of the local-use prefix
		{"", "[64:ff9b:1:7f00:0:100::]", "loopback"}, // /48 reading
		{"", "[2002:7f00:1::]", "127.0.0.1 (carried by the 6to4 address"},
		{"", "[2002:a9fe:a9fe::1]", "metadata"},
		{"", "[2001:0:4136:e378:8000:63bf:80ff:fffe]", "127.0.0.1 (carried by the Teredo address"},
		{"", "[64:ff9b::808:808]", ""}, // 8.8.8.8 by NAT64
		{"", "[2002:808:808::1]", ""},
		// -allow-cidr 0.0.0.0/0 or ::/0 does not name any special range explicitly.
		{"0.0.0.0/0", "127.0.0.1", "loopback"},
		{"0.0.0.0/0", "169.254.169.254", "metadata"},
		{"0.0.0.0/0", "100.100.100.200", "Alibaba"},
		{"0.0.0.0/0", "10.1.2.3", ""},
		{"::/0", "[::1]", "loopback"},
		{"::/0", "[fd00:ec2::254]", "AWS"},
		{"::/0", "[2001:db8::1]", ""},
		{"0.0.0.0/0,::/0", "[::ffff:127.0.0.1]", "loopback"},
		{"96.0.0.0/3", "127.0.0.1", "loopback"},
		{"127.0.0.0/7", "127.0.0.1", "loopback"},
		// Ranges inside the special range name it explicitly.
		{"127.0.0.0/8", "127.0.0.1:8080", ""},
		{"127.0.0.1/32", "127.0.0.1:8080", ""},
		{"127.0.0.1", "127.0.0.2:8080", "loopback"},
		{"127.0.0.0/8", "[::ffff:127.0.0.1]", ""},
		{"127.0.0.0/8", "[::127.0.0.1]", ""},
		{"127.0.0.0/8", "[64:ff9b::7f00:1]", ""},
		{"127.0.0.0/8", "[::1]", "loopback"},
		{"::1", "[::1]", ""},
		{"127.0.0.0/8", "10.1.2.3", "outside every -allow-cidr range (127.0.0.0/8)"},
		{"127.0.0.0/8", "169.254.169.254", "metadata"},
		{"169.254.0.0/16", "169.254.1.1", ""},
		{"169.254.0.0/16", "169.254.169.254", "metadata"}, // the narrowest range must be named
		{"169.254.169.254/32", "169.254.169.254", ""},
		{"fe80::/10", "[fe80::1]", ""},
		{"100.64.0.0/10", "100.100.100.200", "Alibaba"},
		{"100.100.100.200", "100.100.100.200", ""},
		{"fd00::/8", "[fd00:ec2::254]", "AWS"},
		{"fd00::/8", "[fd00:ec2::1]", ""},
		// The allow list applies to what an address carries.
		{"10.0.0.0/8, 192.168.1.7", "10.200.0.1", ""},
		{"10.0.0.0/8, 192.168.1.7", "192.168.1.7:80", ""},
		{"10.0.0.0/8, 192.168.1.7", "192.168.1.8:80", "outside"},
		{"10.0.0.0/8", "[2001:db8::1]", "outside"},
		{"10.0.0.0/8", "[::ffff:10.1.2.3]", ""},
		{"10.0.0.0/8", "[64:ff9b::a01:203]", ""},
		{"10.0.0.0/8", "[2002:a01:203::]", ""},
		{"10.0.0.0/8", "[64:ff9b::b01:203]", "outside"},
		// IPv4-mapped ranges are the IPv4 range they stand for.
		{"::ffff:10.0.0.0/104", "10.1.2.3", ""},
		{"::ffff:10.0.0.0/104", "[::ffff:10.1.2.3]", ""},
		{"::ffff:10.0.0.0/104", "11.1.2.3", "outside every -allow-cidr range (10.0.0.0/8)"},
		{"::ffff:127.0.0.1", "127.0.0.1", ""},
	}
	for _, c := range cases {
		t.Run(c.allow+" "+c.addr, func(t *testing.T) {
			a, err := validate.ParseAddress(c.addr)
			if err != nil {
				t.Fatal(err)
			}
			err = Policy{Allow: mustAllow(t, c.allow)}.Check(a)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && err == nil:
				t.Fatalf("allowed, want refused for %q", c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("refused with %q, want it to say %q", err, c.want)
			}
		})
	}
}

func TestCheckDNSTargets(t *testing.T) {
	deny := Policy{DNS: DNSDeny}
	suffixes, err := ParseDNSSuffixes(".internal.example.com, svc.cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	under := Policy{DNSSuffixes: suffixes}
	loop := Policy{Allow: mustAllow(t, "127.0.0.0/8")}
	cases := []struct {
		name string
		p    Policy
		addr string
		want string // "" when allowed
	}{
		{"names pass by default", Policy{}, "payment-pod-xyz", ""},
		{"public names pass by default", Policy{}, "api.example.com:443", ""},
		{"names pass a narrowed IP list", Policy{Allow: mustAllow(t, "10.0.0.0/8")}, "db.example.com", ""},
		{"localhost", Policy{}, "localhost", "loopback"},
		{"localhost any case", Policy{}, "LocalHost:8080", "loopback"},
		{"under .localhost", Policy{}, "api.localhost", "loopback"},
		{"localhost.localdomain", Policy{}, "localhost.localdomain", "loopback"},
		{"localhost4", Policy{}, "localhost4", "loopback"},
		{"ip6-localhost", Policy{}, "ip6-localhost:80", "loopback"},
		{"ip6-loopback", Policy{}, "ip6-loopback", "loopback"},
		{"localhost6.localdomain6", Policy{}, "localhost6.localdomain6", "loopback"},
		{"not localhost", Policy{}, "localhost-proxy", ""},
		{"GCP metadata name", Policy{}, "metadata.google.internal", "metadata"},
		{"GCP metadata name, any case", Policy{}, "Metadata.Google.Internal:80", "metadata"},
		{"AWS metadata name", Policy{}, "instance-data.ec2.internal", "metadata"},
		{"metadata name under 0.0.0.0/0", Policy{Allow: mustAllow(t, "0.0.0.0/0")}, "metadata.google.internal", "metadata"},
		{"localhost with loopback allowed", loop, "localhost:8080", ""},
		{"ip6-localhost with only IPv4 loopback allowed", loop, "ip6-localhost", "loopback"},
		{"deny refuses names", deny, "db.example.com", "-dns-targets=deny"},
		{"deny refuses localhost", deny, "localhost", "-dns-targets=deny"},
		{"deny keeps IPs", deny, "10.1.2.3", ""},
		{"deny keeps the IP rules", deny, "127.0.0.1", "loopback"},
		{"under a suffix", under, "a.internal.example.com", ""},
		{"the suffix itself", under, "internal.example.com", ""},
		{"suffix any case", under, "A.Internal.Example.COM:80", ""},
		{"second suffix", under, "web.ns.svc.cluster.local", ""},
		{"not under a suffix", under, "internal.example.com.evil.net", "-allow-dns-suffix"},
		{"suffix is label-wise", under, "xinternal.example.com", "-allow-dns-suffix"},
		{"suffixes leave IPs alone", under, "10.1.2.3", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := validate.ParseAddress(c.addr)
			if err != nil {
				t.Fatal(err)
			}
			err = c.p.Check(a)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("%s refused: %v", c.addr, err)
			case c.want != "" && err == nil:
				t.Fatalf("%s allowed, want refused for %q", c.addr, c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("%s refused with %q, want it to say %q", c.addr, err, c.want)
			}
		})
	}
}

func TestParseAllow(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{" 10.0.0.0/8 , 192.168.1.7", "10.0.0.0/8 192.168.1.7/32"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:127.0.0.1", "127.0.0.1/32"},
		{"::ffff:0:0/96", "0.0.0.0/0"},
		{"::1, ::/0", "::1/128 ::/0"},
		{"fd00::/8", "fd00::/8"},
	} {
		got, err := ParseAllow(c.in)
		if err != nil {
			t.Errorf("ParseAllow(%q): %v", c.in, err)
			continue
		}
		s := make([]string, len(got))
		for i, r := range got {
			s[i] = r.String()
		}
		if strings.Join(s, " ") != c.want {
			t.Errorf("ParseAllow(%q) = %v, want %s", c.in, s, c.want)
		}
	}
}

func TestParseAllowRefuses(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"10.0.0.0/33", "not a CIDR range"},
		{"ten", "not a CIDR range"},
		{"10.0.0.0/8,bogus", `"bogus"`},
		{"10.0.0.0/8;", "not a CIDR range"},
		{"fe80::1%eth0", "zone"},
		{"64:ff9b::/96", "NAT64"},
		{"64:ff9b::a00:0/104", "list that IPv4 range instead"},
		{"64:ff9b:1::/48", "NAT64"},
		{"2002::/16", "6to4"},
		{"2002:a00::/24", "6to4"},
		{"2001::/32", "Teredo"},
		{"::a00:0/104", "IPv4-compatible"},
		{"::ffff:0:a00:0/104", "IPv4-translated"},
	} {
		_, err := ParseAllow(c.in)
		if err == nil || !strings.Contains(err.Error(), "-allow-cidr") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseAllow(%q) = %v, want an error naming -allow-cidr and saying %q", c.in, err, c.want)
		}
	}
}

func TestParseDNS(t *testing.T) {
	for in, want := range map[string]DNSRule{"": DNSAllow, "allow": DNSAllow, "DENY": DNSDeny, " deny ": DNSDeny} {
		if got, err := ParseDNSRule(in); err != nil || got != want {
			t.Errorf("ParseDNSRule(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseDNSRule("no"); err == nil || !strings.Contains(err.Error(), "-dns-targets") {
		t.Errorf("ParseDNSRule(no) = %v, want an error naming -dns-targets", err)
	}
	got, err := ParseDNSSuffixes(" .Internal.Example.com,, svc.local ")
	if err != nil || strings.Join(got, " ") != "internal.example.com svc.local" {
		t.Errorf("ParseDNSSuffixes = %q, %v", got, err)
	}
	for _, bad := range []string{"10.0.0.1", "a..b", "x.com:80", "*.example.com", "[::1]"} {
		if _, err := ParseDNSSuffixes(bad); err == nil || !strings.Contains(err.Error(), "-allow-dns-suffix") {
			t.Errorf("ParseDNSSuffixes(%q) = %v, want an error naming -allow-dns-suffix", bad, err)
		}
	}
}

// The connect-time check applies the same rules to a resolved address, and its
// message names the server but never the address.
func TestCheckResolved(t *testing.T) {
	p := Policy{Allow: mustAllow(t, "10.0.0.0/8,127.0.0.1/32")}
	for _, c := range []struct {
		ip string
		ok bool
	}{
		{"10.1.2.3", true},
		{"127.0.0.1", true},
		{"::ffff:127.0.0.1", true},
		{"127.0.0.2", false},
		{"169.254.169.254", false},
		{"::ffff:100.100.100.200", false},
		{"fd00:ec2::254", false},
		{"fe80::1%eth0", false},
		{"11.0.0.1", false},
		{"2001:db8::1", false},
		{"64:ff9b::7f00:2", false},
	} {
		ip := netip.MustParseAddr(c.ip)
		err := p.CheckResolved("web-1", ip)
		if (err == nil) != c.ok {
			t.Errorf("CheckResolved(web-1, %s) = %v, want ok=%v", c.ip, err, c.ok)
			continue
		}
		if err == nil {
			continue
		}
		var r *Refused
		if !errors.As(err, &r) || r.ServerName != "web-1" || r.IP != ip || r.Reason == "" {
			t.Errorf("CheckResolved(web-1, %s) = %#v, want a *Refused naming web-1, the IP and a reason", c.ip, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "'web-1'") || strings.Contains(msg, ip.WithZone("").String()) || strings.Contains(msg, ip.Unmap().String()) {
			t.Errorf("CheckResolved(web-1, %s) says %q: want the server named and the address not", c.ip, msg)
		}
	}
	if err := p.CheckResolved("web-1", netip.Addr{}); err == nil {
		t.Error("CheckResolved accepted the zero address")
	}
}

func TestSpecial(t *testing.T) {
	for ip, want := range map[string]string{
		"127.0.0.1": "loopback", "::ffff:169.254.169.254": "metadata", "2002:7f00:1::": "loopback",
		"10.1.2.3": "", "2001:db8::1": "",
	} {
		got := Special(netip.MustParseAddr(ip))
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("Special(%s) = %q, want %q", ip, got, want)
		}
	}
}
