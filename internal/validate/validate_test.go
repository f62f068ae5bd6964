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

func TestServiceName(t *testing.T) {
	good := []string{"logs", "billing service", "결제 서비스", "Zahlungsdienst ü", strings.Repeat("ü", 100), "a\u0301", "😀 emoji"}
	for _, s := range good {
		if err := ServiceName(s); err != nil {
			t.Errorf("ServiceName(%q) = %v, want ok", s, err)
		}
	}
	bad := map[string]string{ // input -> a piece of the refusal
		"":                               "empty",
		"   ":                            "empty",
		strings.Repeat("ü", 101):         "at most 100 characters (got 101)",
		"logs\r\nX-Evil: 1":              "control characters (found U+000D)",
		"a\x00b":                         "control characters (found U+0000)",
		"a\u2028b":                       "control characters (found U+2028)",
		"billing \u202e10.0.0.1 :kcatta": "format characters",
		"a\u202eb":                       "U+202E",
		"a\u202ab":                       "U+202A",
		"a\u2066b":                       "U+2066",
		"a\u200bb":                       "U+200B",
		"a\u200cb":                       "U+200C",
		"a\u200db":                       "U+200D",
		"a\u200eb":                       "U+200E",
		"a\u200fb":                       "U+200F",
		"a\u2060b":                       "U+2060",
		"a\u2064b":                       "U+2064",
		"\ufefflogs":                     "U+FEFF",
		"a\u00adb":                       "U+00AD",
		"a\ufffdb":                       "replacement character",
		"a\xffb":                         "not valid UTF-8",
		"a\xed\xa0\x80b":                 "not valid UTF-8", // a surrogate encoded as UTF-8 (CESU)
	}
	for s, want := range bad {
		err := ServiceName(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ServiceName(%q) = %v, want an error saying %q", s, err, want)
		}
	}
}

func TestVisibleASCII(t *testing.T) {
	for s, want := range map[string]bool{
		"": true, "node-1~10.0.0.1~pod.ns": true, "!~": true,
		"a b": false, "a\tb": false, "a\x00": false, "a\x7f": false, "é": false, "line\n": false,
	} {
		if got := VisibleASCII(s); got != want {
			t.Errorf("VisibleASCII(%q) = %v, want %v", s, got, want)
		}
	}
}
