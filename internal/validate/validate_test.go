package validate

import (
	"strings"
	"testing"
)

func TestServerName(t *testing.T) {
	good := []string{"web-1", "a", "A.b_c-9", strings.Repeat("x", 100)}
	bad := []string{"", strings.Repeat("x", 101), "web 1", "web/1", "wéb", "web\r\n", "a\x00b", "ｗeb"}
	for _, s := range good {
		if err := ServerName(s); err != nil || !IsServerName(s) {
			t.Errorf("ServerName(%q) = %v, want ok", s, err)
		}
	}
	for _, s := range bad {
		if err := ServerName(s); err == nil || IsServerName(s) {
			t.Errorf("ServerName(%q) accepted, want error", s)
		}
	}
}

func TestParseAddress(t *testing.T) {
	good := map[string]string{ // input -> WithDefaultPort(80)
		"10.1.2.3":             "10.1.2.3:80",
		"10.1.2.3:8080":        "10.1.2.3:8080",
		"[2001:db8::1]":        "[2001:db8::1]:80",
		"[2001:db8::1]:9000":   "[2001:db8::1]:9000",
		"logs.example.com":     "logs.example.com:80",
		"web-1.internal:65535": "web-1.internal:65535",
		"host:1":               "host:1",
	}
	for in, want := range good {
		a, err := ParseAddress(in)
		if err != nil {
			t.Errorf("ParseAddress(%q): %v", in, err)
			continue
		}
		if got := a.WithDefaultPort(80); got != want {
			t.Errorf("ParseAddress(%q).WithDefaultPort(80) = %q, want %q", in, got, want)
		}
		if a.String() != in {
			t.Errorf("ParseAddress(%q).String() = %q", in, a.String())
		}
	}
	bad := []string{
		"", "10.1.2.3:0", "10.1.2.3:65536", "10.1.2.3:", "10.1.2.3:x", "999.1.1.1", "1.2.3",
		"010.1.2.3", "2001:db8::1", "[2001:db8::1", "[10.1.2.3]", "[fe80::1%eth0]", "a..b",
		"-a.com", "a-.com", "a_b.com", "host name", "host\r\n", "h\x00", "例え.jp",
		strings.Repeat("a", 64) + ".com", strings.Repeat("a.", 50) + "com", "[::1]x",
		// A port with leading zeros would not read back as written.
		"10.1.2.3:080", "[::1]:0080", "host:00001",
		// Numbers resolvers read as IPv4 (inet_aton forms) are not DNS names.
		"0x7f000001", "0x7f.1", "0X7F.0.0.1", "0x7f.0x0.0x0.0x1", "2130706433", "017700000001",
	}
	for _, in := range bad {
		if a, err := ParseAddress(in); err == nil {
			t.Errorf("ParseAddress(%q) = %+v, want error", in, a)
		}
	}
}
