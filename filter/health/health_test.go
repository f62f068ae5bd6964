package health

import (
	"strings"
	"testing"

	"switchyard/internal/contract"
	"switchyard/internal/testkit/casstore"
)

const sec = int64(1e9)

func TestEjectAfterMaxFailsWithinFailTimeout(t *testing.T) {
	st := casstore.New()
	a := New(Settings{MaxFails: 3, FailTimeout: 10 * sec}, st, 80)
	now := 100 * sec
	for i := 1; i <= 2; i++ {
		if ej, err := a.Failure("127.0.0.1:9101", now+int64(i)*sec); ej || err != nil {
			t.Fatalf("failure %d ejected=%v err=%v, want counted only", i, ej, err)
		}
	}
	if a.Ejected("127.0.0.1:9101") {
		t.Fatal("ejected after 2 of max_fails 3")
	}
	ej, err := a.Failure("127.0.0.1:9101", now+3*sec)
	if !ej || err != nil || !a.Ejected("127.0.0.1:9101") || a.Len() != 1 {
		t.Fatalf("third failure: ejected=%v err=%v view=%v", ej, err, a.ejected)
	}
	// A failure during the ejection (a request routed in panic) counts for nothing.
	if ej, _ := a.Failure("127.0.0.1:9101", now+4*sec); ej {
		t.Fatal("a failure of an ejected target ejected it again")
	}
	// The ejection lasts fail_timeout, then the target is tried again.
	a.Tick(now + 12*sec)
	if !a.Ejected("127.0.0.1:9101") {
		t.Fatal("ejection ended before fail_timeout")
	}
	a.Tick(now + 13*sec + 1)
	if a.Ejected("127.0.0.1:9101") || a.Len() != 0 {
		t.Fatal("ejection did not end after fail_timeout")
	}
}

func TestFailuresOutsideTheWindowStartAfresh(t *testing.T) {
	st := casstore.New()
	a := New(Settings{MaxFails: 2, FailTimeout: 10 * sec}, st, 80)
	a.Failure("web.internal", 0)
	if ej, _ := a.Failure("web.internal", 11*sec); ej {
		t.Fatal("two failures 11 s apart ejected with fail_timeout 10 s")
	}
	if ej, _ := a.Failure("web.internal", 12*sec); !ej {
		t.Fatal("two failures 1 s apart did not eject")
	}
	// Registered without a port, sent to the default port: the address in the set
	// is ejected too.
	if !a.Ejected("web.internal") {
		t.Fatal("web.internal not ejected")
	}
	b := New(Settings{MaxFails: 2, FailTimeout: 10 * sec}, st, 8080)
	b.Failure("web2:8080", 0)
	b.Failure("web2:8080", 1)
	if !b.Ejected("web2") || !b.Ejected("web2:8080") || b.Ejected("web2:80") || b.Ejected("web") {
		t.Fatalf("default-port matching wrong: %v", b.ejected)
	}
}

func TestOtherVMsLearnOnTheirTick(t *testing.T) {
	st := casstore.New()
	s := Settings{MaxFails: 1, FailTimeout: 10 * sec}
	a, b := New(s, st, 80), New(s, st, 80)
	b.Tick(0)
	if ej, _ := a.Failure("127.0.0.1:9101", sec); !ej {
		t.Fatal("max_fails 1: one failure did not eject")
	}
	if b.Ejected("127.0.0.1:9101") {
		t.Fatal("b learned before its tick")
	}
	reads := st.Reads
	b.Tick(2 * sec)
	if !b.Ejected("127.0.0.1:9101") {
		t.Fatal("b did not learn the ejection on its tick")
	}
	if st.Reads-reads != 1 {
		t.Fatalf("a tick read shared data %d times, want 1", st.Reads-reads)
	}
	// A tick that finds the value unchanged parses nothing but still ends ejections.
	b.Tick(3 * sec)
	b.Tick(11*sec + 1)
	if b.Ejected("127.0.0.1:9101") {
		t.Fatal("b kept the target past fail_timeout")
	}
	// b's own failure of another target reaches a on a's tick.
	b.Failure("127.0.0.1:9102", 12*sec)
	a.Tick(12 * sec)
	if !a.Ejected("127.0.0.1:9102") || a.Ejected("127.0.0.1:9101") {
		t.Fatalf("a's view after b's failure: %v", a.ejected)
	}
}

func TestFailureRetriesWhenAnotherVMWroteFirst(t *testing.T) {
	st := casstore.New()
	a := New(Settings{MaxFails: 1, FailTimeout: 10 * sec}, st, 80)
	st.Refuse = 3
	if ej, err := a.Failure("127.0.0.1:9101", 0); !ej || err != nil {
		t.Fatalf("ejected=%v err=%v after 3 refused writes", ej, err)
	}
	if !strings.HasPrefix(st.Values[contract.HealthKey], "127.0.0.1:9101 0 0 ") {
		t.Fatalf("shared value %q", st.Values[contract.HealthKey])
	}
	// A store that never takes the write: the VM still skips the target itself.
	st.Refuse = 1000
	ej, err := a.Failure("127.0.0.1:9102", 0)
	if !ej || err == nil || !a.Ejected("127.0.0.1:9102") {
		t.Fatalf("ejected=%v err=%v view=%v", ej, err, a.ejected)
	}
}

func TestMaxFailsZeroIsOff(t *testing.T) {
	st := casstore.New()
	a := New(Settings{MaxFails: 0, FailTimeout: 10 * sec}, st, 80)
	for i := 0; i < 5; i++ {
		if ej, _ := a.Failure("127.0.0.1:9101", int64(i)); ej {
			t.Fatal("max_fails 0 ejected")
		}
	}
	a.Tick(10)
	if st.Reads != 0 || len(st.Values) != 0 || a.On() {
		t.Fatalf("max_fails 0 touched shared data: %d reads, %v", st.Reads, st.Values)
	}
}

func TestSharedValueStaysBounded(t *testing.T) {
	st := casstore.New()
	a := New(Settings{MaxFails: 5, FailTimeout: 10 * sec}, st, 80)
	for i := 0; i < MaxEntries+50; i++ {
		a.Failure("h"+strings.Repeat("x", i%7)+"-"+itoa(i)+":80", int64(i))
	}
	if n := strings.Count(st.Values[contract.HealthKey], "\n"); n != MaxEntries {
		t.Fatalf("%d entries kept, want %d", n, MaxEntries)
	}
	// Entries whose window is over and that are not ejected are dropped on the next write.
	a.Failure("last:80", 100*sec)
	if n := strings.Count(st.Values[contract.HealthKey], "\n"); n != 1 {
		t.Fatalf("%d entries after every window ended, want 1", n)
	}
}

func itoa(i int) string {
	return string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
}

func TestParseSkipsForeignLines(t *testing.T) {
	es := parse("a:1 1 2 3\ngarbage\nb 1 x 3\nc -1 1 1\nd:2 0 5 9")
	if len(es) != 2 || es[0].target != "a:1" || es[1].until != 9 {
		t.Fatalf("parse = %+v", es)
	}
	if got := format(es); got != "a:1 1 2 3\nd:2 0 5 9\n" {
		t.Fatalf("format = %q", got)
	}
}

func TestEjectedAllocatesNothing(t *testing.T) {
	st := casstore.New()
	a := New(Settings{MaxFails: 1, FailTimeout: 10 * sec}, st, 80)
	a.Failure("127.0.0.1:9101", 0)
	a.Failure("web:80", 0)
	n := 0
	allocs := testing.AllocsPerRun(1000, func() {
		if a.Ejected("web") {
			n++
		}
		if a.Ejected("127.0.0.1:9102") {
			n--
		}
	})
	if allocs != 0 || n == 0 {
		t.Fatalf("Ejected allocated %v (n=%d)", allocs, n)
	}
}

func TestFailed(t *testing.T) {
	for _, c := range []struct {
		flags     uint64
		haveFlags bool
		details   string
		want      bool
	}{
		{FlagUpstreamConnectionFailure, true, "upstream_reset_before_response_started{remote_connection_failure}", true},
		{FlagUpstreamConnectionTermination, true, "upstream_reset_before_response_started{connection_termination}", true},
		{FlagUpstreamRemoteReset, true, "upstream_reset_before_response_started{remote_reset}", true},
		{FlagUpstreamRequestTimeout, true, "response_timeout", true},
		{FlagDNSResolutionFailed, true, "dns_resolution_failure", true},
		{0, true, "via_upstream", false},             // the upstream's own 503
		{1 << 1, true, "no_healthy_upstream", false}, // UH: a cluster matter, not this target
		{0, false, "upstream_reset_before_response_started{connection_termination}", true},
		{0, false, "response_timeout", true},
		{0, false, "dns_resolution_failure{resolution_failed}", true},
		{0, false, "via_upstream", false},
		{0, false, "", false},
	} {
		if got := Failed(c.flags, c.haveFlags, c.details); got != c.want {
			t.Errorf("Failed(%#x, %v, %q) = %v, want %v", c.flags, c.haveFlags, c.details, got, c.want)
		}
	}
	if MayHaveFailed(200) || MayHaveFailed(500) || !MayHaveFailed(503) || !MayHaveFailed(504) {
		t.Error("MayHaveFailed wrong")
	}
}
