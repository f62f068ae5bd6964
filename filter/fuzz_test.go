package main

import (
	"strings"
	"testing"

	"switchyard/internal/validate"
)

// FuzzSnapshot checks the parser of the registrar's answer (ParseSnapshot): it may
// not panic, and whatever it accepts must be valid by the rules of design.md, because
// the router trusts it without checking again. (The plugin configuration's fuzz target
// is FuzzConfig in internal/pluginconfig.) Run it natively for a while with:
//
//	go test -run '^$' -fuzz '^FuzzSnapshot$' -fuzztime 20s ./filter/
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
