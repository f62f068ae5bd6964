package contract

import (
	"reflect"
	"strings"
	"testing"
)

func readAll(s string) ([]Target, bool) {
	var out []Target
	r := ReadTargets(s)
	for t, ok := r.Next(); ok; t, ok = r.Next() {
		out = append(out, t)
	}
	return out, r.Bad
}

func TestReadTargets(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []Target
		bad  bool
	}{
		{"", nil, false},
		{"10.1.2.3:8080", []Target{{Address: "10.1.2.3:8080", Weight: 1}}, false},
		{"[::1]:9000", []Target{{Address: "[::1]:9000", Weight: 1}}, false},
		{"*127.0.0.1:9101/90,127.0.0.1:9102/10/d,127.0.0.1:9103/0", []Target{
			{Address: "127.0.0.1:9101", Weight: 90},
			{Address: "127.0.0.1:9102", Weight: 10, Draining: true},
			{Address: "127.0.0.1:9103", Weight: 0},
		}, false},
		{"*a/1/x,b/100/dx,c/5/q", []Target{
			{Address: "a", Weight: 1, Down: true},
			{Address: "b", Weight: 100, Draining: true, Down: true},
			{Address: "c", Weight: 5}, // unknown flag letters are ignored
		}, false},
		{"*a/1,", []Target{{Address: "a", Weight: 1}}, true},
		{"*a/101", nil, true},
		{"*a/-1", nil, true},
		{"*a/01", nil, true},
		{"*a/1000", nil, true},
		{"*a/", nil, true},
		{"*a", nil, true},
		{"*/1", nil, true},
		{"*a/1/", nil, true},
		{"*a/1/D", nil, true},
		{"*a/1,,b/2", []Target{{Address: "a", Weight: 1}}, true},
	} {
		got, bad := readAll(c.in)
		if !reflect.DeepEqual(got, c.want) || bad != c.bad {
			t.Errorf("ReadTargets(%q) = %+v bad=%v, want %+v bad=%v", c.in, got, bad, c.want, c.bad)
		}
	}
}

func TestEncodeTargetSet(t *testing.T) {
	for _, c := range []struct {
		in   []Target
		want string
	}{
		{[]Target{{Address: "10.1.2.3:8080", Weight: 90}}, "10.1.2.3:8080"},
		{[]Target{{Address: "10.1.2.3:8080", Weight: 0}}, "*10.1.2.3:8080/0"},
		{[]Target{{Address: "10.1.2.3:8080", Weight: 5, Draining: true}}, "*10.1.2.3:8080/5/d"},
		{[]Target{{Address: "10.1.2.3:8080", Weight: 5, Down: true}}, "*10.1.2.3:8080/5/x"},
		{[]Target{
			{Address: "127.0.0.1:9101", Weight: 90},
			{Address: "127.0.0.1:9102", Weight: 10, Draining: true, Down: true},
			{Address: "[::1]:9103", Weight: 0},
		}, "*127.0.0.1:9101/90,127.0.0.1:9102/10/dx,[::1]:9103/0"},
	} {
		got, err := EncodeTargetSet(c.in)
		if err != nil || got != c.want {
			t.Errorf("EncodeTargetSet(%+v) = %q, %v; want %q", c.in, got, err, c.want)
		}
		if err := CheckTargetSet(got); err != nil {
			t.Errorf("CheckTargetSet(%q) refused the encoder's output: %v", got, err)
		}
	}
}

func TestEncodeTargetSetRefuses(t *testing.T) {
	many := make([]Target, MaxTargets+1)
	for i := range many {
		many[i] = Target{Address: "h" + strings.Repeat("a", i%50) + ".example:" + "1" + strings.Repeat("0", i%4), Weight: 1}
	}
	for _, c := range []struct {
		in   []Target
		want string
	}{
		{nil, "no targets"},
		{many, "more than 64"},
		{[]Target{{Address: "a", Weight: 101}, {Address: "b", Weight: 1}}, "weight must be an integer 0-100"},
		{[]Target{{Address: "a", Weight: -1}}, "weight must be an integer 0-100"},
		{[]Target{{Address: "a", Weight: 1}, {Address: "a", Weight: 2}}, "appears twice"},
		{[]Target{{Address: "a,b", Weight: 1}}, "address"},
		{[]Target{{Address: "a/b", Weight: 1}, {Address: "c", Weight: 1}}, "target 1"},
		{[]Target{{Address: "", Weight: 1}, {Address: "c", Weight: 1}}, "target 1"},
		{[]Target{{Address: "*a", Weight: 1}}, "address"},
		{[]Target{{Address: "a b", Weight: 1}}, "address"},
	} {
		got, err := EncodeTargetSet(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("EncodeTargetSet(%+v) = %q, %v; want an error with %q", c.in, got, err, c.want)
		}
	}
}

func TestCheckTargetSet(t *testing.T) {
	for _, ok := range []string{"web.internal", "10.1.2.3:8080", "*a/0", "*a/1/d", "*a/1,b/0", "*a/7/x"} {
		if err := CheckTargetSet(ok); err != nil {
			t.Errorf("CheckTargetSet(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "*", "*a/1", "*a/1,a/2", "*a/1,", "*a/1,b", "*a b/1,c/1", "10.1.2.3:99999", "*a/1/D,b/1"} {
		if err := CheckTargetSet(bad); err == nil {
			t.Errorf("CheckTargetSet(%q) = nil, want an error", bad)
		}
	}
}

func TestFirstActiveTarget(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "",
		"10.1.2.3:8080":            "10.1.2.3:8080",
		"*a/1/d,b/0,c/3/x,d/2,e/1": "d",
		"*a/1/d,b/0":               "a",
		"*a/":                      "",
	} {
		if got := FirstActiveTarget(in); got != want {
			t.Errorf("FirstActiveTarget(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadTargetsAllocatesNothing(t *testing.T) {
	s := "*127.0.0.1:9101/90,127.0.0.1:9102/10/d,127.0.0.1:9103/0,127.0.0.1:9104/3/x"
	sum := 0
	allocs := testing.AllocsPerRun(1000, func() {
		r := ReadTargets(s)
		for t, ok := r.Next(); ok; t, ok = r.Next() {
			sum += t.Weight + len(t.Address)
		}
		sum += len(FirstActiveTarget(s))
	})
	if allocs != 0 {
		t.Fatalf("reading a target set allocated %v times per run, want 0", allocs)
	}
	if sum == 0 {
		t.Fatal("the reader read nothing")
	}
}

func BenchmarkReadTargets(b *testing.B) {
	s := "*127.0.0.1:9101/40,127.0.0.1:9102/30,127.0.0.1:9103/20/d,127.0.0.1:9104/10"
	b.ReportAllocs()
	n := 0
	for i := 0; i < b.N; i++ {
		r := ReadTargets(s)
		for t, ok := r.Next(); ok; t, ok = r.Next() {
			n += t.Weight
		}
	}
	if n == 0 {
		b.Fatal("read nothing")
	}
}
