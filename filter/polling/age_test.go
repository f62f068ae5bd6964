package polling

import (
	"strconv"
	"testing"

	"switchyard/internal/testkit/casstore"
)

func TestAgeWatch(t *testing.T) {
	st := casstore.New()
	a, b := NewAgeWatch(30, st), NewAgeWatch(30, st)
	const s = int64(1e9)
	if r := a.Tick(100 * s); r.Known || r.Event != AgeUnchanged {
		t.Fatalf("before any poll: %+v", r)
	}
	st.SetCAS(PolledKey, strconv.FormatInt(100*s, 10), 0)
	steps := []struct {
		at      int64
		polled  int64 // 0: unchanged
		seconds int64
		events  int // AgeStale + AgeFresh lines over both VMs
		want    AgeEvent
	}{
		{at: 110 * s, seconds: 10},
		{at: 125 * s, seconds: 25},
		{at: 131 * s, seconds: 31, events: 1, want: AgeStale},
		{at: 200 * s, seconds: 100}, // still stale: no second line
		{at: 201 * s, polled: 201 * s, seconds: 0, events: 1, want: AgeFresh},
		{at: 210 * s, seconds: 9},
		{at: 201 * s, seconds: 0},
	}
	for i, st0 := range steps {
		if st0.polled != 0 {
			st.SetCAS(PolledKey, strconv.FormatInt(st0.polled, 10), 0)
		}
		ra, rb := a.Tick(st0.at), b.Tick(st0.at)
		if !ra.Known || ra.Seconds != st0.seconds || rb.Seconds != st0.seconds {
			t.Fatalf("step %d: %+v %+v, want %d s", i, ra, rb, st0.seconds)
		}
		n, ev := 0, AgeUnchanged
		for _, r := range []AgeReport{ra, rb} {
			if r.Event != AgeUnchanged {
				n++
				ev = r.Event
				if r.Message == "" {
					t.Errorf("step %d: event without a message", i)
				}
			}
		}
		if n != st0.events || ev != st0.want {
			t.Fatalf("step %d: %d events (%v), want %d (%v)", i, n, ev, st0.events, st0.want)
		}
	}
	// A time ahead of the reader's monotonic clock is of another clock (wall-clock ns
	// from an older filter): no age, and no stale line, until the next poll writes one.
	st.SetCAS(PolledKey, "1800000000000000000", 0)
	if r := a.Tick(300 * s); r.Known || r.Event != AgeUnchanged {
		t.Fatalf("a wall-clock poll time: %+v, want unknown", r)
	}
}
