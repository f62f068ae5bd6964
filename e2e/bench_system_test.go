package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testkit/load"
	"switchyard/internal/testkit/procfs"
	"switchyard/internal/testkit/wait"
)

// System benchmarks of propagation and proxy throughput: the built registrar and dev proxy binaries, running
// the real filter.wasm, over real HTTP on loopback. Binaries rather than the dev proxy
// in-process, so what is measured is what `make run` users run, and the load
// generator's own goroutines and GC are not charged to the proxy's process.
//
//   - BenchmarkPropagation: registration acknowledged → first request through the dev
//     proxy routed to the new target, and delete acknowledged → first 404; 200 samples
//     each. Target: p99 ≤ 50 ms.
//   - BenchmarkDevproxyThroughput: requests/s through the dev proxy on /sys (routed by
//     the filter) and on a path outside path_prefixes (bypass: -upstream, the same
//     upstream server), with 10 and with 10,000 registered names (one registrar and
//     dev proxy per table size, the names registered through the registrar). 32
//     keep-alive clients, 1 s per run; each ratio is the median over 6 rounds of two
//     adjacent runs of its two sides, alternating which goes first. It also reports
//     the dev proxy process's CPU time per request, read from /proc, which unlike
//     throughput does not move with the rest of the machine's load. Targets: routed ≥
//     0.9 × bypass; routed with 10,000 names within 5% of routed with 10.
//
// Each benchmark does its whole workload once per b.N iteration and reports figures
// over all iterations; run them with -benchtime 1x:
//
//	go test -run '^$' -bench 'BenchmarkPropagation|BenchmarkDevproxyThroughput' -benchtime 1x ./e2e/

// propagationSamples is how many registrations (and as many deletes) are timed.
const propagationSamples = 200

// propagationBound fails a sample that has not propagated by then: far above the
// target, it only keeps a broken sync from hanging the benchmark.
const propagationBound = 10 * time.Second

func BenchmarkPropagation(b *testing.B) {
	reg := startRegistrar(b)
	ups := []struct{ name, addr string }{{"alpha", upstream(b, "alpha")}, {"beta", upstream(b, "beta")}}
	register(b, reg.url(), "warm", ups[0].addr) // the first table, so routers start loaded
	px := startDevproxy(b, reg.url())
	waitRoutedTo(b, px, "warm", "alpha")

	var added, removed []time.Duration
	b.ResetTimer()
	for iter := range b.N {
		for i := range propagationSamples {
			name := fmt.Sprintf("prop-%d-%d", iter, i)
			up := ups[i%2] // alternate targets, so a stale route would show as the wrong upstream
			if g := proxyGet(b, px, name); g.status != 404 || g.errorCode() != "unknown_server" {
				b.Fatalf("%s before its registration: %d %q, want 404 unknown_server", name, g.status, g.body)
			}
			register(b, reg.url(), name, up.addr)
			added = append(added, timeUntil(b, px, name, routedTo(name, up.name, "")))
			deleteServer(b, reg.url(), name)
			removed = append(removed, timeUntil(b, px, name, removedFrom(name, up.name)))
		}
	}
	b.StopTimer()
	reportLatencies(b, "register", added)
	reportLatencies(b, "delete", removed)
}

// proxyGet sends one routed request for name through the dev proxy.
func proxyGet(b *testing.B, px *process, name string) answer {
	return get(b, px.url()+"/sys/prop", "X-Server-Name", name)
}

// timeUntil measures from now until the first answer for name that done accepts,
// polling back to back (with a pause far below the figure's resolution) so the first
// right answer is seen within about one request's time.
func timeUntil(b *testing.B, px *process, name string, done func(answer) (bool, error)) time.Duration {
	b.Helper()
	start := time.Now()
	for time.Since(start) < propagationBound {
		ok, err := done(proxyGet(b, px, name))
		if err != nil {
			b.Fatal(err)
		}
		if ok {
			return time.Since(start)
		}
		time.Sleep(200 * time.Microsecond)
	}
	b.Fatalf("%s: no change through the dev proxy within %v", name, propagationBound)
	return 0
}

// routedTo accepts an answer for name routed to the upstream called want; until then
// it tolerates the state before the change: 404 unknown_server when old is "", else
// routing to the upstream called old. Anything else is an error.
func routedTo(name, want, old string) func(answer) (bool, error) {
	return func(g answer) (bool, error) {
		switch {
		case g.status == 200 && strings.HasPrefix(g.body, want+" GET /sys/prop"):
			return true, nil
		case old == "" && g.status == 404 && g.errorCode() == "unknown_server",
			old != "" && g.status == 200 && strings.HasPrefix(g.body, old+" GET /sys/prop"):
			return false, nil // not there yet
		}
		return false, fmt.Errorf("%s, waiting for %s: %d %q", name, want, g.status, g.body)
	}
}

// removedFrom accepts 404 unknown_server for name, tolerating routing to the upstreams
// called old (the table before the delete) until then.
func removedFrom(name string, old ...string) func(answer) (bool, error) {
	return func(g answer) (bool, error) {
		if g.status == 404 && g.errorCode() == "unknown_server" {
			return true, nil
		}
		for _, o := range old {
			if g.status == 200 && strings.HasPrefix(g.body, o+" GET /sys/prop") {
				return false, nil // still the old table
			}
		}
		return false, fmt.Errorf("after deleting %s: %d %q", name, g.status, g.body)
	}
}

func reportLatencies(b *testing.B, what string, ds []time.Duration) {
	b.ReportMetric(load.Millis(load.Percentile(ds, 50)), what+"-p50-ms")
	b.ReportMetric(load.Millis(load.Percentile(ds, 99)), what+"-p99-ms")
	b.ReportMetric(load.Millis(load.Percentile(ds, 100)), what+"-max-ms")
}

// waitRoutedTo waits until name is routed to the upstream called want.
func waitRoutedTo(b *testing.B, px *process, name, want string) {
	b.Helper()
	wait.Eventually(b, propagation, func() string {
		if g := proxyGet(b, px, name); g.status != 200 || !strings.HasPrefix(g.body, want+" ") {
			return fmt.Sprintf("%s → %d %q, want %s", name, g.status, g.body, want)
		}
		return ""
	})
}

// Throughput run parameters: keep-alive clients, fixed concurrency and duration.
const (
	loadClients  = 32
	loadDuration = time.Second
	loadWarmup   = time.Second
	loadMax      = 5_000_000 // a count bound far above what 3 s can reach
	scaleNames   = 10_000
	smallNames   = 10
)

// throughputTarget is one dev proxy with its own registrar and table, in front of the
// shared upstream.
type throughputTarget struct {
	label  string
	px     *process
	names  []string
	client *http.Client
}

// newThroughputTarget starts a registrar with n names, all pointing at upstreamAddr,
// and a dev proxy whose -upstream is the same server; it returns once every name is
// routed through the proxy.
func newThroughputTarget(b *testing.B, label string, n int, upstreamAddr string) *throughputTarget {
	b.Helper()
	reg := startRegistrar(b)
	tt := &throughputTarget{label: label, client: load.NewClient(loadClients)}
	b.Cleanup(tt.client.CloseIdleConnections)
	for i := range n {
		tt.names = append(tt.names, "load-"+strconv.Itoa(i))
	}
	start := time.Now()
	// Registrations go in 50 at a time: group commit puts them in few durable writes.
	res, err := load.Run(load.Options{
		Concurrency: 50, Duration: 2 * time.Minute, MaxRequests: n,
		Request: func(i int) (*http.Request, error) {
			body := fmt.Sprintf(`{"host":%q,"ipAddress":%q,"serviceName":"bench"}`, tt.names[i], upstreamAddr)
			req, err := http.NewRequest("POST", reg.url()+"/api/servers/register", strings.NewReader(body))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
			}
			return req, err
		},
	})
	if err == nil {
		err = res.Err()
	}
	if err == nil && res.Requests != n {
		err = fmt.Errorf("%d of %d registrations answered in time", res.Requests, n)
	}
	if err != nil {
		b.Fatalf("registering %d names: %v", n, err)
	}
	registered := time.Since(start)
	tt.px = startDevproxy(b, reg.url(), "-upstream", "http://"+upstreamAddr)
	// The table is in when every name routes: one request per name, all checked.
	wait.Eventually(b, time.Minute, func() string {
		res := tt.run(b, "/sys/bench", loadClients, n, time.Minute)
		if err := res.Err(); err != nil || res.Requests != n {
			return fmt.Sprintf("%s: %d of %d names checked: %v", label, res.Requests, n, err)
		}
		return ""
	})
	b.Logf("%s: registered in %v, all routed through the proxy after %v", label, registered.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return tt
}

// run sends GETs for path, request i naming names[i mod n], and checks that each one
// reached the upstream with its path: routed requests by the filter's choice of
// target, bypass requests through -upstream.
func (tt *throughputTarget) run(b *testing.B, path string, clients, count int, d time.Duration) load.Result {
	b.Helper()
	url := tt.px.url() + path
	want := "alpha GET " + path + " "
	res, err := load.Run(load.Options{
		Concurrency: clients, Duration: d, MaxRequests: count, Client: tt.client,
		Request: func(i int) (*http.Request, error) {
			req, err := http.NewRequest("GET", url, nil)
			if err == nil {
				req.Header.Set("X-Server-Name", tt.names[i%len(tt.names)])
			}
			return req, err
		},
		Check: func(i int, resp *http.Response, body []byte) error {
			if resp.StatusCode != 200 || !strings.HasPrefix(string(body), want) {
				return fmt.Errorf("%s for %s: %d %.200q, want 200 %q...", path, tt.names[i%len(tt.names)], resp.StatusCode, body, want)
			}
			return nil
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// throughputRounds is how many times each comparison runs both its sides. The machine
// is small and shared, so each ratio is taken from directly adjacent short runs of its
// two sides (where the rest of the machine's load is most alike), alternating which
// side goes first, and the median over the rounds is reported.
const throughputRounds = 6

// mode is one measured combination, summed over its runs.
type mode struct {
	tt       *throughputTarget
	path     string
	requests int
	elapsed  time.Duration
	cpu      time.Duration // CPU time the dev proxy process spent in this mode's runs
}

func (m *mode) perSecond() float64 { return float64(m.requests) / m.elapsed.Seconds() }

// measure runs m once for loadDuration and adds the run to its totals.
func (m *mode) measure(b *testing.B) float64 {
	b.Helper()
	cpu0 := procfs.CPUTime(b, m.tt.px.Pid())
	res := m.tt.run(b, m.path, loadClients, loadMax, loadDuration)
	if err := res.Err(); err != nil {
		b.Fatalf("%s %s: %v", m.tt.label, m.path, err)
	}
	m.cpu += procfs.CPUTime(b, m.tt.px.Pid()) - cpu0
	m.requests += res.Requests
	m.elapsed += res.Elapsed
	return res.PerSecond()
}

// comparison is one reported ratio: num's req/s over den's, run by run.
type comparison struct {
	unit     string
	num, den *mode
	ratios   []float64
}

func BenchmarkDevproxyThroughput(b *testing.B) {
	up := upstream(b, "alpha")
	start := time.Now()
	small := newThroughputTarget(b, "10 names", smallNames, up)
	large := newThroughputTarget(b, "10,000 names", scaleNames, up)
	b.Logf("set-up (registrars, %d names registered and checked through the proxy): %v", smallNames+scaleNames, time.Since(start).Round(time.Millisecond))
	routed10, bypass10 := &mode{tt: small, path: "/sys/bench"}, &mode{tt: small, path: "/bypass/bench"}
	routed10k, bypass10k := &mode{tt: large, path: "/sys/bench"}, &mode{tt: large, path: "/bypass/bench"}
	comparisons := []*comparison{
		{unit: "routed/bypass-ratio", num: routed10, den: bypass10},
		{unit: "routed/bypass-10k-ratio", num: routed10k, den: bypass10k},
		{unit: "10k/10-routed-ratio", num: routed10k, den: routed10},
	}
	for _, m := range []*mode{routed10, bypass10, routed10k, bypass10k} { // connections up, caches warm; not counted
		if res := m.tt.run(b, m.path, loadClients, loadMax, loadWarmup); res.Err() != nil {
			b.Fatalf("warm-up %s %s: %v", m.tt.label, m.path, res.Err())
		}
	}
	b.ResetTimer()
	for range b.N {
		for round := range throughputRounds {
			for _, c := range comparisons {
				var num, den float64
				if round%2 == 0 {
					num, den = c.num.measure(b), c.den.measure(b)
				} else {
					den, num = c.den.measure(b), c.num.measure(b)
				}
				c.ratios = append(c.ratios, num/den)
			}
		}
	}
	b.StopTimer()
	for _, m := range []*mode{routed10, bypass10, routed10k, bypass10k} {
		b.Logf("%-12s %-14s %6.0f req/s overall, dev proxy CPU %5.1f µs/req", m.tt.label, m.path, m.perSecond(), m.cpuPerRequest())
	}
	b.ReportMetric(routed10.perSecond(), "routed-req/s")
	b.ReportMetric(bypass10.perSecond(), "bypass-req/s")
	b.ReportMetric(routed10k.perSecond(), "routed-10k-req/s")
	b.ReportMetric(bypass10k.perSecond(), "bypass-10k-req/s")
	for _, c := range comparisons {
		b.Logf("%-24s by round %.3f", c.unit, c.ratios)
		b.ReportMetric(median(c.ratios), c.unit)
	}
	// The filter's share seen from the proxy's side: CPU per request, which unlike
	// throughput does not depend on what else the machine is doing.
	b.ReportMetric(routed10.cpuPerRequest(), "routed-proxy-cpu-µs/req")
	b.ReportMetric(bypass10.cpuPerRequest(), "bypass-proxy-cpu-µs/req")
	b.ReportMetric(routed10k.cpuPerRequest(), "routed-10k-proxy-cpu-µs/req")
}

func median(fs []float64) float64 {
	s := slices.Clone(fs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func (m *mode) cpuPerRequest() float64 {
	return float64(m.cpu) / float64(time.Microsecond) / float64(m.requests)
}
