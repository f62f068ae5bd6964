package routing

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"switchyard/internal/abi"
	"switchyard/internal/contract"
	"switchyard/internal/pluginconfig"
)

// ejectedSet is the Ejections of a test.
type ejectedSet map[string]bool

func (e ejectedSet) Len() int                    { return len(e) }
func (e ejectedSet) Ejected(address string) bool { return e[address] }

func picks(b *balancer, name, set string, ej Ejections, n int) []pick {
	out := make([]pick, n)
	for i := range out {
		out[i] = b.pick(name, set, ej)
	}
	return out
}

func targetsOf(ps []pick) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.target)
	}
	return strings.Join(s, " ")
}

// nginx's own example of smooth weighted round robin: weights 5, 1, 1 give
// a a b a c a a, never three heavy picks in a row where a light one fits.
func TestSmoothWeightedRoundRobinSequence(t *testing.T) {
	var b balancer
	got := targetsOf(picks(&b, "web", "*a/5,b/1,c/1", nil, 14))
	if want := "a a b a c a a a a b a c a a"; got != want {
		t.Fatalf("sequence %q, want %q", got, want)
	}
}

// referenceSWRR is nginx's algorithm as its description says it, for the test to hold
// the balancer (precomputed cycles and all) to: weights of the candidates, the index
// picked each time.
func referenceSWRR(weights []int, n int) []int {
	current := make([]int, len(weights))
	total := 0
	for _, w := range weights {
		total += w
	}
	out := make([]int, n)
	for k := range out {
		best := -1
		for i, w := range weights {
			if w == 0 {
				continue
			}
			current[i] += w
			if best < 0 || current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		out[k] = best
	}
	return out
}

func TestPicksFollowNginxAlgorithm(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 300; trial++ {
		n := 1 + rng.IntN(8)
		weights := make([]int, n)
		var entries []string
		for i := range weights {
			weights[i] = rng.IntN(contract.MaxWeight + 1)
			if trial%3 == 0 {
				weights[i] = 1 + rng.IntN(5)
			}
			entries = append(entries, fmt.Sprintf("10.0.0.%d:80/%d", i, weights[i]))
		}
		set := "*" + strings.Join(entries, ",")
		if weights[0] == 0 {
			set += ",10.0.0.99:80/1/d" // keep the '*' form valid even when all weigh 0
		}
		var b balancer
		allZero := true
		for _, x := range weights {
			allZero = allZero && x == 0
		}
		if allZero {
			if p := b.pick("web", set, nil); !p.noActive {
				t.Fatalf("%s: %+v, want no active target", set, p)
			}
			continue
		}
		for k, w := range referenceSWRR(weights, 700) {
			p := b.pick("web", set, nil)
			if wantTarget := fmt.Sprintf("10.0.0.%d:80", w); p.target != wantTarget {
				t.Fatalf("%s pick %d: %q, want %q", set, k, p.target, wantTarget)
			}
		}
	}
}

func TestWeightsAreExactOverEachCycle(t *testing.T) {
	var b balancer
	count := map[string]int{}
	for _, p := range picks(&b, "web", "*127.0.0.1:9101/90,127.0.0.1:9102/10", nil, 10000) {
		count[p.target]++
	}
	if count["127.0.0.1:9101"] != 9000 || count["127.0.0.1:9102"] != 1000 {
		t.Fatalf("90/10 over 10,000 picks gave %v", count)
	}
}

func TestCandidates(t *testing.T) {
	var b balancer
	for _, c := range []struct {
		set  string
		ej   ejectedSet
		want string // the targets picked over 4 requests
		flag string // "panic", "none" or ""
	}{
		{"10.0.0.1:80", nil, "10.0.0.1:80 10.0.0.1:80 10.0.0.1:80 10.0.0.1:80", ""},
		{"10.0.0.1:80", ejectedSet{"10.0.0.1:80": true}, "10.0.0.1:80 10.0.0.1:80 10.0.0.1:80 10.0.0.1:80", "panic"},
		{"*a/1/d,b/0,c/1", nil, "c c c c", ""},
		{"*a/1/x,b/1,c/1/x", nil, "b b b b", ""},
		{"*a/1,b/1,c/1", ejectedSet{"a": true, "c": true}, "b b b b", ""},
		// An address inside another: each entry is its own.
		{"*10.0.0.10:80/1,10.0.0.1/1/x,10.0.0.1:8/1", nil, "10.0.0.10:80 10.0.0.1:8 10.0.0.10:80 10.0.0.1:8", ""},
		// Every routable entry down or ejected: round robin over them anyway.
		{"*a/1/x,b/1,c/0,d/1/d", ejectedSet{"b": true}, "a b a b", "panic"},
		// Nothing routable: draining or weight 0 only, whatever their health.
		{"*a/1/d,b/0,c/0/x", nil, "   ", "none"},
		{"*a/1/dx", nil, "   ", "none"},
	} {
		ps := picks(&b, "n-"+c.set, c.set, c.ej, 4)
		if got := targetsOf(ps); got != c.want {
			t.Errorf("%s ejected %v: picked %q, want %q", c.set, c.ej, got, c.want)
		}
		for _, p := range ps {
			if p.panic != (c.flag == "panic") || p.noActive != (c.flag == "none") {
				t.Errorf("%s ejected %v: %+v, want %s", c.set, c.ej, p, c.flag)
			}
		}
	}
}

// Each name keeps its own state, and a changed set starts afresh.
func TestStatePerNameAndSet(t *testing.T) {
	var b balancer
	if got := targetsOf(picks(&b, "one", "*a/2,b/1", nil, 2)); got != "a b" {
		t.Fatalf("one: %q", got)
	}
	if got := targetsOf(picks(&b, "two", "*a/2,b/1", nil, 3)); got != "a b a" {
		t.Fatalf("two: %q", got)
	}
	if got := targetsOf(picks(&b, "one", "*a/2,b/1", nil, 1)); got != "a" {
		t.Fatalf("one continued: %q", got)
	}
	// The set changed (b drained): a fresh state over the new set.
	if got := targetsOf(picks(&b, "one", "*a/2,b/1/d,c/2", nil, 4)); got != "a c a c" {
		t.Fatalf("one after the change: %q", got)
	}
}

func TestPickAllocatesNothing(t *testing.T) {
	var b balancer
	ej := ejectedSet{"127.0.0.1:9103": true}
	set := "*127.0.0.1:9101/40,127.0.0.1:9102/30,127.0.0.1:9103/20,127.0.0.1:9104/10/d"
	allocs := testing.AllocsPerRun(1000, func() {
		if b.pick("web", set, ej).target == "" {
			t.Fatal("no target")
		}
		if !b.pick("web", "*127.0.0.1:9103/1", ej).panic {
			t.Fatal("no panic")
		}
	})
	if allocs != 0 {
		t.Fatalf("a pick allocated %v times", allocs)
	}
}

// Decide routes to the picked target, counts panic, and answers NoActiveTarget with
// the JSON reply of the other rejections.
func TestDecideOverTargetSets(t *testing.T) {
	r := New(pluginconfig.Default())
	ej := ejectedSet{}
	r.UseEjections(ej)
	tab := &mapTable{routes: map[string]string{
		"pair":     "*127.0.0.1:9101/3,127.0.0.1:9102/1",
		"draining": "*127.0.0.1:9101/3/d,127.0.0.1:9102/0",
		"noport":   "*web-a/1,web-b/1/x",
	}}
	headers := func(n string) string { return abi.EncodePairs(get("/sys/x", name(n))) }
	if d, _ := r.Decide(abi.EncodePairs(get("/sys/x", name("web"))), &mapTable{routes: map[string]string{"web": "10.0.0.1:80"}}); d.FromSet || d.Target != "10.0.0.1:80" {
		t.Fatalf("a plain target: %+v", d)
	}
	var got []string
	for i := 0; i < 4; i++ {
		d, err := r.Decide(headers("pair"), tab)
		if err != nil || d.Outcome != Routed || d.Panic {
			t.Fatalf("pair: %+v %v", d, err)
		}
		got = append(got, d.Edits()[0].Value)
	}
	if strings.Join(got, " ") != "127.0.0.1:9101 127.0.0.1:9101 127.0.0.1:9102 127.0.0.1:9101" {
		t.Fatalf("pair routed to %v", got)
	}
	d, _ := r.Decide(headers("noport"), tab)
	if d.Outcome != Routed || d.Target != "web-a" || d.Edits()[0].Value != "web-a:80" || d.Panic || !d.FromSet {
		t.Fatalf("noport: %+v %+v", d, d.Edits())
	}
	ej["web-a"] = true
	d, _ = r.Decide(headers("noport"), tab)
	if d.Outcome != Routed || !d.Panic || (d.Target != "web-a" && d.Target != "web-b") {
		t.Fatalf("noport all ejected or down: %+v", d)
	}
	d, _ = r.Decide(headers("draining"), tab)
	if d.Outcome != NoActiveTarget || len(d.Edits()) != 0 || d.Outcome.Status() != 503 || d.Outcome.Code() != contract.CodeNoActiveTarget {
		t.Fatalf("draining: %+v", d)
	}
	var body struct{ Error, Message string }
	if err := json.Unmarshal(r.AppendReplyBody(nil, d), &body); err != nil || body.Error != "no_active_target" || body.Message == "" {
		t.Fatalf("reply body %+v, %v", body, err)
	}
	if !d.Outcome.Rejected() || d.Outcome.String() != "no_active_target" {
		t.Fatalf("NoActiveTarget: rejected %v, %s", d.Outcome.Rejected(), d.Outcome)
	}
}

// BenchmarkPick: the balancer's cost with one target (the plain form) and with four;
// the router's whole cost per request is in filter/inhost's BenchmarkFilter.
func BenchmarkPick(b *testing.B) {
	for _, set := range []string{
		"127.0.0.1:9101",
		"*127.0.0.1:9101/40,127.0.0.1:9102/30,127.0.0.1:9103/20,127.0.0.1:9104/10",
	} {
		b.Run(fmt.Sprintf("targets=%d", strings.Count(set, ",")+1), func(b *testing.B) {
			var bal balancer
			b.ReportAllocs()
			for b.Loop() {
				if bal.pick("web-1", set, nil).target == "" {
					b.Fatal("no target")
				}
			}
		})
	}
}

// A precomputed cycle gives way while a target of it is ejected, and resumes after.
func TestScheduleYieldsToEjections(t *testing.T) {
	var b balancer
	set := "*a/1,b/1,c/2"
	picks(&b, "web", set, nil, 10)
	if st := b.state("web", set); st.period != 4 {
		t.Fatalf("after 10 picks: period %d, want a planned cycle of 4", st.period)
	}
	ej := ejectedSet{"c": true}
	if got := targetsOf(picks(&b, "web", set, ej, 4)); strings.Contains(got, "c") {
		t.Fatalf("c ejected, picked %q", got)
	}
	count := map[string]int{}
	for _, p := range picks(&b, "web", set, ejectedSet{}, 400) {
		count[p.target]++
	}
	if count["a"] != 100 || count["b"] != 100 || count["c"] != 200 {
		t.Fatalf("after the ejection: %v, want 100/100/200", count)
	}
}

// Many names picked in turn each keep their own exact cycle (two slots per key make a
// collision of two names harmless).
func TestManyNamesKeepTheirCycles(t *testing.T) {
	var b balancer
	const names = 60
	count := make([]map[string]int, names)
	for i := range count {
		count[i] = map[string]int{}
	}
	for k := 0; k < 100; k++ {
		for i := 0; i < names; i++ {
			p := b.pick(fmt.Sprintf("name-%d", i), fmt.Sprintf("*10.0.0.%d:1/90,10.0.0.%d:2/10", i, i), nil)
			count[i][p.target[len(p.target)-1:]]++
		}
	}
	for i, c := range count {
		if c["1"] != 90 || c["2"] != 10 {
			t.Fatalf("name-%d: %v, want 90/10", i, c)
		}
	}
}
