// Package load is the benchmarks' HTTP load generator: a fixed number of clients, each
// on its own keep-alive connection, send requests back to back until a time limit or a
// request count is reached, whichever comes first. Every answer is checked; the
// benchmarks report a throughput only for runs in which every answer was right.
//
// It is deliberately small: no external tools, loopback targets only (the caller
// builds the requests), and both bounds are required so a run can never go on forever.
package load

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options describe one run. Concurrency, Duration, MaxRequests and Request are required.
type Options struct {
	// Concurrency is the number of clients; each keeps one connection alive.
	Concurrency int
	// Duration ends the run: no request starts after it has passed.
	Duration time.Duration
	// MaxRequests ends the run after this many requests in all.
	MaxRequests int
	// Request builds request number i (0, 1, ... across all clients, each number once).
	Request func(i int) (*http.Request, error)
	// Check judges an answer, with its whole body; nil accepts any 2xx.
	Check func(i int, resp *http.Response, body []byte) error
	// Client sends the requests; nil means one made by NewClient(Concurrency).
	Client *http.Client
}

// Result is what a run did.
type Result struct {
	Requests int           // requests answered (right or wrong)
	Failures int           // requests that failed to send or were judged wrong
	First    error         // the first failure, for the message
	Elapsed  time.Duration // from the first request's start to the last answer
}

// PerSecond is the rate of answered requests.
func (r Result) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Err is nil when every answer was right, else a message with the count and the first.
func (r Result) Err() error {
	if r.Failures == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d requests failed; first: %w", r.Failures, r.Requests, r.First)
}

// NewClient is a client for at most conns concurrent keep-alive connections to one
// host: the idle pool holds every one of them, so no request pays for a new connection
// once all clients have started, and the cap keeps the transport from dialling spare
// connections when requests race for one. It never uses an outside proxy.
func NewClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.MaxIdleConns = conns
	t.MaxIdleConnsPerHost = conns
	t.MaxConnsPerHost = conns
	t.DisableCompression = true
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// Run performs a run. It returns an error only for bad Options; wrong answers are
// counted in the Result.
func Run(o Options) (Result, error) {
	switch {
	case o.Concurrency <= 0:
		return Result{}, errors.New("load: Concurrency must be at least 1")
	case o.Duration <= 0:
		return Result{}, errors.New("load: Duration must be set; a run must end")
	case o.MaxRequests <= 0:
		return Result{}, errors.New("load: MaxRequests must be set; a run must end")
	case o.Request == nil:
		return Result{}, errors.New("load: Request must be set")
	}
	client := o.Client
	if client == nil {
		client = NewClient(o.Concurrency)
		defer client.CloseIdleConnections()
	}
	var (
		next     atomic.Int64 // the next request number to claim
		answered atomic.Int64
		failures atomic.Int64
		firstMu  sync.Mutex
		first    error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		failures.Add(1)
		firstMu.Lock()
		if first == nil {
			first = err
		}
		firstMu.Unlock()
	}
	start := time.Now()
	deadline := start.Add(o.Duration)
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= o.MaxRequests {
					return
				}
				req, err := o.Request(i)
				if err != nil {
					fail(fmt.Errorf("request %d: %w", i, err))
					return
				}
				resp, err := client.Do(req)
				if err != nil {
					answered.Add(1)
					fail(fmt.Errorf("request %d: %w", i, err))
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				answered.Add(1)
				if err != nil {
					fail(fmt.Errorf("request %d: reading the body: %w", i, err))
					continue
				}
				if err := check(o.Check, i, resp, body); err != nil {
					fail(fmt.Errorf("request %d: %w", i, err))
				}
			}
		}()
	}
	wg.Wait()
	return Result{
		Requests: int(answered.Load()),
		Failures: int(failures.Load()),
		First:    first,
		Elapsed:  time.Since(start),
	}, nil
}

func check(c func(int, *http.Response, []byte) error, i int, resp *http.Response, body []byte) error {
	if c != nil {
		return c(i, resp, body)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	return nil
}

// Percentile is the p-th percentile (0 < p <= 100) of ds by the nearest-rank method:
// the smallest sample that at least p% of the samples do not exceed. ds is not
// changed; an empty ds gives 0.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(p / 100 * float64(len(s)))
	if float64(rank) < p/100*float64(len(s)) {
		rank++ // ceiling
	}
	return s[min(max(rank, 1), len(s))-1]
}

// Millis is d in milliseconds, for b.ReportMetric.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
