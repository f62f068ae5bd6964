package main

import (
	"strings"
	"testing"

	"switchyard/internal/validate"
)

// The fuzz targets check the two parsers that take input from outside the proxy:
// ParseSnapshot (the registrar's answer) and ParseConfig (the operator's plugin
// configuration). Neither may panic, and whatever either accepts must be valid by
// the rules of design.md, because the router trusts it without checking again.
// Run each natively for a while with, e.g.:
//
//	go test -run '^$' -fuzz '^FuzzSnapshot$' -fuzztime 20s ./filter/
//	go test -run '^$' -fuzz '^FuzzConfig$' -fuzztime 20s ./filter/
//
// Inputs the fuzzer found are kept in testdata/fuzz/<target>/ and run by every
// `go test` as regression cases.

func FuzzSnapshot(f *testing.F) {
	seeds := []string{
		`{"revision":3,"routes":{"web-1":"10.1.2.3:8080","v6":"[2001:db8::1]","dns":"logs.internal"}}`,
		`{"revision":0,"routes":{}}`,
		`{"revision":1,"routes":{},"generatedAt":"now"}`,
		`{"revision":1,"routes":{"w\u0065b":"10.0.0.1"}}`,
		`{"revision":1,"routes":{"a":"10.0.0.1","a":"10.0.0.2"}}`,
		`{"revision":1,"revision":2,"routes":{}}`,
		`{"revision":18446744073709551615,"routes":{"a":"h:65535"}}`,
		`{"revision":1e3,"routes":{"a":"[::1]:1"}}`,
		`{"revision":1,"routes":{"a":"10.0.0.1:0"}}`,
		`{"revision":1,"routes":{"a\u0000":"10.0.0.1"}}`,
		`{"revision":1,"routes":{"` + strings.Repeat("a", 100) + `":"` + strings.Repeat("b", 63) + `.c"}}`,
		`<html>502</html>`,
		`[1]`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint64(0), false)
		f.Add([]byte(s), uint64(1), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, current uint64, loaded bool) {
		snap, err := ParseSnapshot(body, current, loaded)
		if err != nil {
			if err.Error() == "" {
				t.Errorf("an empty error for %q", body)
			}
			return
		}
		if loaded && snap.Revision <= current {
			t.Errorf("accepted revision %d, not newer than the live %d: %q", snap.Revision, current, body)
		}
		for name, target := range snap.Routes {
			if !validate.IsServerName(name) {
				t.Errorf("accepted the invalid server name %q in %q", name, body)
			}
			if _, err := validate.ParseAddress(target); err != nil {
				t.Errorf("accepted the invalid target %q of %q (%v) in %q", target, name, err, body)
			}
		}
	})
}

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
		c, err := ParseConfig(data)
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

// configProblem states the first way c breaks design.md's configuration rules, or "".
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
