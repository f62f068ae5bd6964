package pluginconfig

import (
	"strings"
	"testing"
)

// FuzzConfig checks the parser of the operator's plugin configuration (Parse): it may
// not panic, and whatever it accepts must be valid by the documented rules (README, "Filter configuration"), because
// the filter, the dev proxy and the envoy.yaml check all trust it. Run it natively for
// a while with:
//
//	go test -run '^$' -fuzz '^FuzzConfig$' -fuzztime 20s ./internal/pluginconfig/
//
// Inputs the fuzzer found are kept in testdata/fuzz/FuzzConfig/ and run by every
// `go test` as regression cases.

func FuzzConfig(f *testing.F) {
	seeds := []string{
		``,
		`{}`,
		`{"header":"X-Target-Server","path_prefixes":["/sys","/logs/v2"],"default_port":8080,"strip_header":true}`,
		`{"path_prefixes":["/"]}`,
		`{"registrar":{"cluster":"reg","authority":"reg.local","path":"/routes","wait_seconds":5,"token":"s3cret"}}`,
		`{"default_port":80,"default_port":81}`,
		`{"default_port":65536}`,
		`{"default_port":8e1}`,
		`{"max_fails":0,"fail_timeout":1}`,
		`{"fail_timeout":"10s"}`,
		`{"registrar":{"wait_seconds":601}}`,
		`{"registrar":{"token":"a\nb"}}`,
		`{"header":"x\u0000y"}`,
		`{"path_prefixes":["/sys\u0000"]}`,
		`{"registrar":{"path":"/v1/routes\t"}}`,
		`["/sys"]`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if err.Error() == "" {
				t.Errorf("an empty error for %q", data)
			}
			return
		}
		if problem := configProblem(c); problem != "" {
			t.Errorf("accepted %q: %s (%+v)", data, problem, c)
		}
	})
}

// configProblem states the first way c breaks the documented configuration rules, or "".
func configProblem(c Config) string {
	switch {
	case !isHeaderName(c.Header) || c.Header != strings.ToLower(c.Header):
		return "header " + c.Header + " is not a lower-case header name"
	case len(c.PathPrefixes) == 0:
		return "no path prefix"
	case c.DefaultPort < 1 || c.DefaultPort > 65535:
		return "default_port out of range"
	case c.Registrar.WaitSeconds < 1 || c.Registrar.WaitSeconds > MaxWaitSeconds:
		return "wait_seconds out of range"
	case c.Registrar.Cluster == "" || c.Registrar.Authority == "":
		return "empty cluster or authority"
	case !strings.HasPrefix(c.Registrar.Path, "/") || !printableNoSpace(c.Registrar.Path, "?#"):
		return "registrar.path is not a path"
	case c.ProxyID != "" && (len(c.ProxyID) > MaxProxyIDLength || !printableNoSpace(c.ProxyID, "") || strings.ContainsFunc(c.ProxyID, func(r rune) bool { return r >= 0x7f })):
		return "proxy_id is not visible ASCII of at most 200 bytes"
	case c.StaleAfterSeconds < 0 || c.StaleAfterSeconds > MaxStaleAfterSeconds:
		return "stale_after_seconds out of range"
	case c.MaxFails < 0 || c.MaxFails > MaxMaxFails:
		return "max_fails out of range"
	case c.FailTimeout < 1 || c.FailTimeout > MaxFailTimeout:
		return "fail_timeout out of range"
	}
	for _, p := range c.PathPrefixes {
		if p != "/" && (!strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || !printableNoSpace(p, "?#")) {
			return "path prefix " + p + " is not a path"
		}
	}
	// The registrar strings go into the poll's headers: no control characters.
	for _, s := range []string{c.Registrar.Cluster, c.Registrar.Authority, c.Registrar.Token} {
		if strings.ContainsFunc(s, isControl) {
			return "a registrar value holds a control character"
		}
	}
	return ""
}

// printableNoSpace: no control characters, no spaces, none of extra.
func printableNoSpace(s, extra string) bool {
	return !strings.ContainsFunc(s, isControl) && !strings.ContainsAny(s, " "+extra)
}
