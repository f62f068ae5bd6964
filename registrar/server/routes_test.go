package server

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestRoutesAnswersAtOnce(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	// revision 0: a loaded, empty table
	r := call(t, "GET", reg.URL+"/v1/routes", "")
	if r.Code != 200 || string(r.Body) != "{\"revision\":0,\"routes\":{}}\n" {
		t.Fatalf("before any write: %d %q", r.Code, r.Body)
	}
	register(t, reg.URL, "web-1", "10.1.2.3:8080", "logs")
	register(t, reg.URL, "web-2", "10.1.2.4", "logs")
	cases := []struct {
		name, query string
	}{
		{"after absent", ""},
		{"after absent with wait", "?wait=30"},
		{"after behind", "?after=1&wait=30"},
		{"after ahead (restored backup)", "?after=99&wait=30"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			r := call(t, "GET", reg.URL+"/v1/routes"+c.query, "")
			if r.Code != 200 || time.Since(start) > 2*time.Second {
				t.Fatalf("status %d after %v, want 200 at once: %s", r.Code, time.Since(start), r.Body)
			}
			b := r.Routes(t)
			if b.Revision != 2 || b.Routes["web-1"] != "10.1.2.3:8080" || b.Routes["web-2"] != "10.1.2.4" || len(b.Routes) != 2 {
				t.Fatalf("table %+v", b)
			}
		})
	}
}

func TestRoutesBadParameters(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	cases := []struct{ query, field string }{
		{"?after=-1", "after"},
		{"?after=x", "after"},
		{"?after=", "after"},
		{"?after=1.5", "after"},
		{"?after=0&wait=-1", "wait"},
		{"?after=0&wait=soon", "wait"},
		{"?after=0&wait=NaN", "wait"},
		{"?after=0&wait=Inf", "wait"},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			r := call(t, "GET", reg.URL+"/v1/routes"+c.query, "")
			if r.Code != 400 {
				t.Fatalf("status %d, want 400", r.Code)
			}
			if res := r.Result(t); res.Success || len(res.Error) < len(c.field) || res.Error[:len(c.field)] != c.field {
				t.Fatalf("error %q does not start with %q", res.Error, c.field)
			}
		})
	}
}

func TestRoutesNotModifiedAfterWait(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	cases := []struct {
		query    string
		min, max time.Duration
	}{
		{"?after=0", 0, time.Second},
		{"?after=0&wait=0", 0, time.Second},
		{"?after=0&wait=0.3", 300 * time.Millisecond, 3 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			start := time.Now()
			r := call(t, "GET", reg.URL+"/v1/routes"+c.query, "")
			took := time.Since(start)
			if r.Code != http.StatusNotModified || took < c.min || took > c.max {
				t.Fatalf("status %d after %v, want 304 after %v..%v", r.Code, took, c.min, c.max)
			}
		})
	}
}

func TestRoutesWakeOnChange(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	got := make(chan reply, 1)
	go func() { got <- call(t, "GET", reg.URL+"/v1/routes?after=0&wait=30", "") }()
	waitGauge(t, reg, 1)
	register(t, reg.URL, "web-1", "10.1.2.3:8080", "logs")
	select {
	case r := <-got:
		if r.Code != 200 {
			t.Fatalf("status %d: %s", r.Code, r.Body)
		}
		if b := r.Routes(t); b.Revision != 1 || b.Routes["web-1"] != "10.1.2.3:8080" {
			t.Fatalf("table %+v", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the long-poll did not wake on the change")
	}
}

// 1,000 clients waiting on one revision are all answered with the new table by one
// change, and promptly: waiting is a closed channel, not a polling loop.
func TestRoutesThousandWaiters(t *testing.T) {
	const n = 1000
	reg := startRegistrar(t, regOptions{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: 0}}
	defer client.CloseIdleConnections()
	type answer struct {
		code int
		rev  string
		at   time.Time
		err  error
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(reg.URL + "/v1/routes?after=0&wait=30")
			if err != nil {
				answers[i].err = err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers[i] = answer{code: resp.StatusCode, rev: string(b), at: time.Now(), err: err}
		}()
	}
	waitGauge(t, reg, n)
	changed := time.Now()
	register(t, reg.URL, "web-1", "10.1.2.3:8080", "logs")
	wg.Wait()
	var lat []time.Duration
	for i, a := range answers {
		if a.err != nil || a.code != 200 || a.rev != "{\"revision\":1,\"routes\":{\"web-1\":\"10.1.2.3:8080\"}}\n" {
			t.Fatalf("waiter %d: %v %d %q", i, a.err, a.code, a.rev)
		}
		lat = append(lat, a.at.Sub(changed))
	}
	slices.Sort(lat)
	t.Logf("%d waiters woken: median %v, slowest %v after the write was sent", n, lat[n/2], lat[n-1])
	if lat[n-1] > 3*time.Second {
		t.Fatalf("slowest waiter answered %v after the change", lat[n-1])
	}
}

// waitGauge waits (bounded) until n long-polls are waiting.
func waitGauge(t *testing.T, reg *testRegistrar, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for gaugeValue(t, reg.Metrics.watchers) != float64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("%v long-polls waiting, want %d", gaugeValue(t, reg.Metrics.watchers), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// A wait too large for a time.Duration is capped at 60 s like any other long wait:
// the poll parks (it neither answers 304 at once nor reports a negative wait).
func TestRoutesHugeWaitIsCapped(t *testing.T) {
	waits := make(chan time.Duration, 8)
	reg := startRegistrarTB(t, regOptions{observe: func(r SyncRequest) { waits <- r.Wait }})
	for _, v := range []string{"1e10", "9223372037", "1e300"} {
		t.Run(v, func(t *testing.T) {
			rev := reg.Store.Current().Revision()
			got := make(chan reply, 1)
			go func() {
				got <- call(t, "GET", reg.URL+"/v1/routes?v=2&lineage="+reg.Store.Lineage()+"&after="+strconv.FormatUint(rev, 10)+"&wait="+v, "")
			}()
			if w := <-waits; w != maxWait {
				t.Fatalf("wait=%s observed as %v, want %v", v, w, maxWait)
			}
			waitGauge(t, reg, 1)
			register(t, reg.URL, "web-"+v, "10.1.2.3", "logs")
			if r := <-got; r.Code != 200 {
				t.Fatalf("wait=%s: %d after a write, want 200", v, r.Code)
			}
		})
	}
}
