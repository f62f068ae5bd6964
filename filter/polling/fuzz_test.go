package polling

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"switchyard/internal/contract"
	"switchyard/internal/validate"
)

// FuzzAnswer checks the parser of the registrar's answers (ParseAnswer: version-1
// tables, full-table pages and deltas): it may not panic, and whatever it accepts must
// be valid by the registrar's own rules, because routers trust the table without
// checking again. Run it for a while with:
//
//	go test -run '^$' -fuzz '^FuzzAnswer$' -fuzztime 20s ./filter/polling/
//
// Inputs the fuzzer found are kept in testdata/fuzz/FuzzAnswer/ and run by every
// `go test` as regression cases.
func FuzzAnswer(f *testing.F) {
	for _, s := range []string{
		`{"revision":3,"routes":{"web-1":"10.1.2.3:8080","v6":"[2001:db8::1]","dns":"logs.internal"}}`,
		`{"revision":0,"routes":{}}`,
		`{"revision":1,"routes":{"a":"10.0.0.1","a":"10.0.0.2"}}`,
		`{"revision":18446744073709551615,"routes":{"a":"h:65535"}}`,
		`{"revision":1,"routes":{"a\u0000":"10.0.0.1"}}`,
		`{"revision":1,"routes":{"` + strings.Repeat("a", 100) + `":"` + strings.Repeat("b", 63) + `.c"}}`,
		`{"kind":"full","lineage":"0f3a","revision":7,"routes":{"a":"10.0.0.1","b":"10.0.0.2"},"next":"c"}`,
		`{"kind":"full","lineage":"0f3a","revision":7,"routes":{"b":"10.0.0.1","a":"10.0.0.2"}}`,
		`{"kind":"full","lineage":"0f3a","revision":7,"routes":{},"next":"a"}`,
		`{"kind":"delta","lineage":"0f3a","from":6,"revision":9,"upserts":{"a":"10.0.0.1"},"removals":["b"]}`,
		`{"kind":"delta","lineage":"0f3a","from":6,"revision":9,"upserts":{"a":"*10.0.0.1:80/90,10.0.0.2:80/10/d,[::1]/0/x"},"removals":[]}`,
		`{"kind":"full","lineage":"0f3a","revision":7,"routes":{"a":"*10.0.0.1/1,10.0.0.1/2","b":"*x/101","c":"*10.0.0.1/1"}}`,
		`{"kind":"delta","lineage":"0f3a","from":9,"revision":9,"upserts":{},"removals":[]}`,
		`{"kind":"delta","lineage":"0f3a","from":1,"revision":2,"upserts":{"a":"10.0.0.1"},"removals":["a"]}`,
		`{"kind":"delta","lineage":"x y","from":1,"revision":2,"upserts":{},"removals":[]}`,
		`{"kind":"snapshot","lineage":"L","revision":2}`,
		`{"kind":"full","lineage":"L","revision":1,"routes":{"a":"10.0.0.1",}}`,
		`{"kind":"full","lineage":"L","revision":1,"routes":{"a":"10.0.0.1" "b":"10.0.0.2"}}`,
		`{"kind":"full","lineage":"L","revision":1,"routes":{"a" "10.0.0.1"}}`,
		`{"kind":"full","lineage":"L","revision":1,"routes":{"a":"10.0.0.1"}`,
		`{"kind":"full","lineage":"L","revision":1,"routes":{ "a" : "10.0.0.1" ,	"b":"10.0.0.2" } , "x":[1,2}`,
		`{"kind":"full","lineage":"L","revision":1,"routes":{"a":"10.0.0.1"}}}`,
		`<html>502</html>`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := ParseAnswer(body)
		if err != nil && err.Error() == "body is not valid JSON" && gjson.ValidBytes(body) {
			t.Fatalf("refused %q as invalid JSON, which it is not", body)
		}
		if err != nil {
			if err.Error() == "" {
				t.Errorf("an empty error for %q", body)
			}
			return
		}
		if !gjson.ValidBytes(body) {
			t.Fatalf("accepted %q, which is not valid JSON", body)
		}
		routes := pairs(a.Routes)
		checkRoutesAgree(t, body, a)
		seen := map[string]bool{}
		for i, r := range routes {
			if !validate.IsServerName(r[0]) {
				t.Errorf("accepted the invalid server name %q in %q", r[0], body)
			}
			tr, n := contract.ReadTargets(r[1]), 0
			for e, ok := tr.Next(); ok; e, ok = tr.Next() {
				n++
				if _, err := validate.ParseAddress(e.Address); err != nil {
					t.Errorf("accepted the invalid target %q in the set %q of %q (%v) in %q", e.Address, r[1], r[0], err, body)
				}
			}
			if tr.Bad || n == 0 || n > contract.MaxTargets {
				t.Errorf("accepted the target set %q of %q (%d entries, bad %v) in %q", r[1], r[0], n, tr.Bad, body)
			}
			if seen[r[0]] {
				t.Errorf("accepted %q twice in %q", r[0], body)
			}
			seen[r[0]] = true
			if a.Kind == Full && !a.V1 && i > 0 && r[0] <= routes[i-1][0] {
				t.Errorf("accepted a page out of byte order: %q", body)
			}
		}
		for _, n := range a.Removals {
			if !validate.IsServerName(n) || seen[n] {
				t.Errorf("accepted the removal %q in %q", n, body)
			}
			seen[n] = true
		}
		switch a.Kind {
		case Delta:
			if a.Revision <= a.From || a.V1 || a.Next != "" {
				t.Errorf("accepted the delta %+v from %q", a, body)
			}
		case Full:
			if a.Next != "" && (len(routes) == 0 || a.Next <= routes[len(routes)-1][0] || !validate.IsServerName(a.Next)) {
				t.Errorf("accepted next %q after %q", a.Next, body)
			}
		default:
			t.Errorf("accepted kind %d from %q", a.Kind, body)
		}
		if !a.V1 && !ValidLineage(a.Lineage) || a.V1 && a.Lineage != "" {
			t.Errorf("accepted lineage %q (v1 %v) from %q", a.Lineage, a.V1, body)
		}
	})
}

// pairs collects an answer's routes.
func pairs(r Routes) [][2]string {
	var out [][2]string
	for name, target := range r.All() {
		out = append(out, [2]string{name, target})
	}
	return out
}

// checkRoutesAgree checks that the routes ParseAnswer accepted (through the one-pass
// check when the object is plain) are those gjson's decoder gives, with the same
// count, first and last name.
func checkRoutesAgree(t *testing.T, body []byte, a Answer) {
	t.Helper()
	field := contract.AnswerRoutes
	if a.Kind == Delta {
		field = contract.AnswerUpserts
	}
	want, err := decodeRoutes(gjson.GetBytes(body, field), a.Kind == Full && !a.V1)
	if err != nil {
		t.Fatalf("ParseAnswer accepted %q, gjson's decoding refuses it: %v", body, err)
	}
	got, all := pairs(a.Routes), want.list
	if len(got) != len(all) || a.Routes.Len() != len(all) || a.Routes.First() != want.First() || a.Routes.Last() != want.Last() {
		t.Fatalf("routes of %q: %q (len %d, first %q, last %q), decoded %q", body, got, a.Routes.Len(), a.Routes.First(), a.Routes.Last(), all)
	}
	for i := range got {
		if got[i] != all[i] {
			t.Fatalf("routes of %q: %q, decoded %q", body, got, all)
		}
	}
}
