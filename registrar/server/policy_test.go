package server

import (
	"strings"
	"testing"

	"switchyard/internal/validate"
)

func TestPolicy(t *testing.T) {
	cases := []struct {
		allow, addr string
		ok          bool
	}{
		{"", "10.1.2.3:8080", true},
		{"", "[2001:db8::1]", true},
		{"", "payment-pod-xyz", true},
		{"", "127.0.0.1", false},
		{"", "127.9.9.9:80", false},
		{"", "[::1]:80", false},
		{"", "169.254.169.254", false},
		{"", "169.254.1.1:80", false},
		{"", "[fe80::1]", false},
		{"", "0.0.0.0", false},
		{"", "0.1.2.3", false},
		{"", "[::]", false},
		{"", "224.0.0.1", false},
		{"", "[ff02::1]", false},
		{"", "255.255.255.255", false},
		{"", "[::ffff:127.0.0.1]", false},
		{"", "[::ffff:169.254.169.254]:80", false},
		{"", "localhost", false},
		{"", "LocalHost:8080", false},
		{"", "api.localhost", false},
		{"", "localhost-proxy", true},
		{"127.0.0.0/8", "127.0.0.1:8080", true},
		{"127.0.0.0/8", "localhost:8080", true},
		{"127.0.0.0/8", "[::ffff:127.0.0.1]", true},
		{"127.0.0.0/8", "10.1.2.3", false},
		{"127.0.0.0/8", "169.254.169.254", false},
		{"127.0.0.0/8", "dns-name", true},
		{"10.0.0.0/8, 192.168.1.7", "10.200.0.1", true},
		{"10.0.0.0/8, 192.168.1.7", "192.168.1.7:80", true},
		{"10.0.0.0/8, 192.168.1.7", "192.168.1.8:80", false},
		{"10.0.0.0/8", "[2001:db8::1]", false},
		{"10.0.0.0/8", "[::ffff:10.1.2.3]", true},
		{"169.254.169.254/32", "169.254.169.254", true},
		{"fe80::/10", "[fe80::1]", true},
	}
	for _, c := range cases {
		t.Run(c.allow+" "+c.addr, func(t *testing.T) {
			allow, err := ParseAllowCIDRs(c.allow)
			if err != nil {
				t.Fatal(err)
			}
			a, err := validate.ParseAddress(c.addr)
			if err != nil {
				t.Fatal(err)
			}
			err = Policy{Allow: allow}.Check(a)
			if (err == nil) != c.ok {
				t.Fatalf("Check = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestParseAllowCIDRsRefuses(t *testing.T) {
	for _, s := range []string{"10.0.0.0/33", "ten", "10.0.0.0/8,bogus", "10.0.0.0/8;"} {
		if _, err := ParseAllowCIDRs(s); err == nil || !strings.Contains(err.Error(), "-allow-cidr") {
			t.Errorf("ParseAllowCIDRs(%q) = %v, want an error naming -allow-cidr", s, err)
		}
	}
}

// With -allow-cidr the HTTP API refuses what is outside and accepts what is inside.
func TestAllowCIDROverHTTP(t *testing.T) {
	reg := startRegistrar(t, regOptions{allow: "127.0.0.0/8,10.1.0.0/16"})
	cases := []struct {
		addr string
		code int
	}{
		{"127.0.0.1:9001", 200},
		{"10.1.2.3", 200},
		{"10.2.0.1", 400},
		{"169.254.169.254", 400},
		{"[::ffff:10.1.2.3]", 200},
		{"[64:ff9b::a01:203]", 200},
		{"[fd00:ec2::254]", 400},
		{"[::ffff:100.100.100.200]", 400},
		{"[::169.254.169.254]", 400},
	}
	for _, c := range cases {
		r := call(t, "POST", reg.URL+"/api/servers/register", regBody("web-1", c.addr, "logs"))
		if r.Code != c.code {
			t.Errorf("%s: %d, want %d: %s", c.addr, r.Code, c.code, r.Body)
		}
		if c.code == 400 && !strings.Contains(r.Result(t).Error, "ipAddress") {
			t.Errorf("%s: error does not name ipAddress: %s", c.addr, r.Body)
		}
	}
}
