package load

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var ds []time.Duration
		for _, x := range v {
			ds = append(ds, time.Duration(x)*time.Millisecond)
		}
		return ds
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // unsorted on purpose
	}
	tests := []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one sample", ms(7), 99, 7 * time.Millisecond},
		{"median of odd", ms(3, 1, 2), 50, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 is the max", ms(hundred...), 100, 100 * time.Millisecond},
		{"p99 of 200 takes the 198th", ms(append(hundred, hundred...)...), 99, 99 * time.Millisecond},
		{"tiny p is the min", ms(5, 9), 0.1, 5 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := fmt.Sprint(tc.ds)
			if got := Percentile(tc.ds, tc.p); got != tc.want {
				t.Errorf("Percentile(p%v) = %v, want %v", tc.p, got, tc.want)
			}
			if fmt.Sprint(tc.ds) != before {
				t.Errorf("Percentile reordered its input")
			}
		})
	}
}

// counting is a loopback server that answers "ok <n>" and counts requests and
// connections.
type counting struct {
	srv      *httptest.Server
	requests atomic.Int64
	conns    atomic.Int64
}

func newCounting(t *testing.T, delay time.Duration) *counting {
	c := &counting{}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		time.Sleep(delay)
		fmt.Fprintf(w, "ok %s", r.URL.Query().Get("i"))
	}))
	c.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.conns.Add(1)
		}
	}
	c.srv.Start()
	t.Cleanup(c.srv.Close)
	return c
}

func (c *counting) request(i int) (*http.Request, error) {
	return http.NewRequest("GET", c.srv.URL+"/?i="+strconv.Itoa(i), nil)
}

func TestRunEndsAtTheRequestCountOnKeptAliveConnections(t *testing.T) {
	c := newCounting(t, 0)
	seen := make([]atomic.Bool, 500)
	res, err := Run(Options{
		Concurrency: 4, Duration: 20 * time.Second, MaxRequests: 500, Request: c.request,
		Check: func(i int, resp *http.Response, body []byte) error {
			if string(body) != "ok "+strconv.Itoa(i) {
				return fmt.Errorf("answer %q to request %d", body, i)
			}
			seen[i].Store(true)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 500 || res.Err() != nil || c.requests.Load() != 500 {
		t.Fatalf("got %d answered (%v), server saw %d; want exactly 500, all right", res.Requests, res.Err(), c.requests.Load())
	}
	for i := range seen {
		if !seen[i].Load() {
			t.Fatalf("request number %d was never sent; each number must be sent once", i)
		}
	}
	if n := c.conns.Load(); n > 4 {
		t.Errorf("%d connections for 4 clients: keep-alive is not working", n)
	}
	if res.PerSecond() <= 0 {
		t.Errorf("PerSecond = %v", res.PerSecond())
	}
}

func TestRunEndsAtTheDuration(t *testing.T) {
	c := newCounting(t, 20*time.Millisecond)
	start := time.Now()
	res, err := Run(Options{Concurrency: 2, Duration: 200 * time.Millisecond, MaxRequests: 1_000_000, Request: c.request})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a 200 ms run took %v", took)
	}
	// 2 clients × 200 ms / 20 ms: at most 20 requests (fewer on a busy machine, but each
	// client sends at least one); anything near the cap means the run did not stop.
	if res.Requests < 2 || res.Requests > 22 || res.Err() != nil {
		t.Fatalf("answered %d (%v), want 2 to about 20, all right", res.Requests, res.Err())
	}
}

func TestRunCountsWrongAnswers(t *testing.T) {
	c := newCounting(t, 0)
	wrong := errors.New("odd requests are wrong")
	res, err := Run(Options{
		Concurrency: 3, Duration: 20 * time.Second, MaxRequests: 100, Request: c.request,
		Check: func(i int, _ *http.Response, _ []byte) error {
			if i%2 == 1 {
				return wrong
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failures != 50 || !errors.Is(res.Err(), wrong) {
		t.Fatalf("failures %d, err %v; want 50 wrapping the check's error", res.Failures, res.Err())
	}
}

func TestRunDefaultCheckRejectsNon2xx(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	res, err := Run(Options{Concurrency: 1, Duration: 10 * time.Second, MaxRequests: 3,
		Request: func(int) (*http.Request, error) { return http.NewRequest("GET", srv.URL, nil) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failures != 3 {
		t.Fatalf("failures %d, want all 3 404s counted", res.Failures)
	}
}

func TestRunRefusesUnboundedOptions(t *testing.T) {
	req := func(int) (*http.Request, error) { return http.NewRequest("GET", "http://127.0.0.1:1", nil) }
	tests := []struct {
		name string
		o    Options
	}{
		{"no clients", Options{Duration: time.Second, MaxRequests: 1, Request: req}},
		{"no duration", Options{Concurrency: 1, MaxRequests: 1, Request: req}},
		{"no count", Options{Concurrency: 1, Duration: time.Second, Request: req}},
		{"no request", Options{Concurrency: 1, Duration: time.Second, MaxRequests: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Run(tc.o); err == nil {
				t.Fatal("Run accepted options that do not bound the run")
			}
		})
	}
}
