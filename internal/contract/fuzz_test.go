package contract

import (
	"strings"
	"testing"
)

// FuzzTargetSet holds the codec to the format's text (targetset.go): the reader never
// panics and stops within the string; a set CheckTargetSet accepts re-encodes to
// itself (one encoding per set); the encoder's output of what was read is accepted
// and reads back the same. Run it for longer with:
//
//	go test -run '^$' -fuzz '^FuzzTargetSet$' -fuzztime 30s ./internal/contract/
func FuzzTargetSet(f *testing.F) {
	for _, s := range []string{
		"", "*", "10.1.2.3:8080", "[::1]:9000", "web.internal",
		"*127.0.0.1:9101/90,127.0.0.1:9102/10/d,127.0.0.1:9103/0",
		"*a/1/x,b/100/dx,c/5/q", "*a/1,", "*a/101", "*a/01", "*a/1,a/2", "*a/1", "*a//d", "*,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var ts []Target
		r := ReadTargets(s)
		for e, ok := r.Next(); ok; e, ok = r.Next() {
			if len(ts) > len(s) {
				t.Fatalf("ReadTargets(%q) gave more entries than the string has bytes", s)
			}
			if e.Weight < 0 || e.Weight > MaxWeight || !strings.Contains(s, e.Address) {
				t.Fatalf("ReadTargets(%q) gave %+v", s, e)
			}
			ts = append(ts, e)
		}
		first := FirstActiveTarget(s)
		if first != "" && !strings.Contains(s, first) {
			t.Fatalf("FirstActiveTarget(%q) = %q, not part of the set", s, first)
		}
		err := CheckTargetSet(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("CheckTargetSet(%q) refused it without a reason", s)
			}
			return
		}
		if r.Bad || len(ts) == 0 || len(ts) > MaxTargets {
			t.Fatalf("CheckTargetSet(%q) accepted a set the reader read as %d entries, bad=%v", s, len(ts), r.Bad)
		}
		enc, err := EncodeTargetSet(ts)
		if err != nil {
			t.Fatalf("EncodeTargetSet(read(%q)) = %v", s, err)
		}
		// Unknown flag letters are dropped by the reader, so compare what they mean.
		again, _ := readAll(enc)
		if len(again) != len(ts) {
			t.Fatalf("%q re-encoded as %q: %d entries, want %d", s, enc, len(again), len(ts))
		}
		for i := range ts {
			if ts[i].Address != again[i].Address || ts[i].Draining != again[i].Draining || ts[i].Down != again[i].Down ||
				(ts[i].Weight != again[i].Weight && !(len(ts) == 1 && ts[i].Active())) {
				t.Fatalf("%q re-encoded as %q: entry %d %+v became %+v", s, enc, i, ts[i], again[i])
			}
		}
		if enc != s && !hasRedundantFlags(s) {
			t.Fatalf("accepted set %q re-encoded as %q", s, enc)
		}
	})
}

// hasRedundantFlags reports whether a '*' set writes its flags other than the
// encoder would ("xd", "dd", unknown letters), which the reader accepts and the
// encoder normalises.
func hasRedundantFlags(s string) bool {
	if s[0] != TargetSetMarker {
		return false
	}
	r := ReadTargets(s)
	for _, e := range strings.Split(s[1:], ",") {
		t, _ := r.Next()
		parts := strings.Split(e, "/")
		if len(parts) == 3 {
			want := ""
			if t.Draining {
				want += "d"
			}
			if t.Down {
				want += "x"
			}
			if parts[2] != want {
				return true
			}
		}
	}
	return false
}
