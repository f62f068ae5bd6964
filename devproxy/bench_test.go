package devproxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testkit/apitest"
	"switchyard/internal/testkit/bin"
	"switchyard/internal/testkit/load"
)

// In-process benchmarks of the dev proxy, for profiling its own cost per request: the
// real filter.wasm on the real host, the real registrar binary feeding the table, real
// HTTP on loopback. Unlike e2e's BenchmarkDevproxyThroughput (the built
// binary, measured from outside), these run the proxy in the test process, so
// -cpuprofile and -memprofile show where its time and garbage go:
//
//	go test -run '^$' -bench 'BenchmarkServe' -benchmem -cpuprofile cpu.out ./devproxy/
//
// BenchmarkServe/routed and BenchmarkServe/bypass send the same GET to the same upstream,
// through the filter and around it; the difference between them is the routed path's
// cost. Figures include the client's and the upstream's work, which is alike for both.

// benchClients is the number of concurrent keep-alive clients, as in the e2e benchmark.
const benchClients = 32

type benchSetup struct {
	proxy  *httptest.Server
	client *http.Client
}

// setupBench starts the registrar, the upstream and the proxy for the benchmarks of
// one parent, registers one name and waits until it routes. Everything stops when the
// parent benchmark ends.
func setupBench(b *testing.B) *benchSetup {
	b.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "alpha "+r.Method+" "+r.URL.Path+"\n")
	}))
	b.Cleanup(up.Close)
	reg := startRegistrar(b)
	register(b, reg.URL(), "bench", up.Listener.Addr().String())
	p, err := New(context.Background(), Config{
		Wasm: bin.Read(b, "filter.wasm"), Envoy: repoEnvoy(b), Registrar: []string{reg.URL()}, Upstream: up.URL, Workers: 2,
		AllowCIDR: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	srv := httptest.NewServer(p)
	b.Cleanup(srv.Close)
	env := &benchSetup{proxy: srv, client: load.NewClient(benchClients)}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := env.get("/sys/bench")
		if err == nil {
			return env
		}
		if time.Now().After(deadline) {
			b.Fatalf("the name never routed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get sends one GET for path naming "bench" and checks that it reached the upstream.
func (e *benchSetup) get(path string) error {
	req, _ := http.NewRequest("GET", e.proxy.URL+path, nil)
	req.Header.Set("X-Server-Name", "bench")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "bench/1.0")
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if want := "alpha GET " + path + "\n"; resp.StatusCode != 200 || string(body) != want {
		return fmt.Errorf("GET %s: %d %q, want 200 %q", path, resp.StatusCode, body, want)
	}
	return nil
}

// BenchmarkServe runs "routed" and "bypass" on one set-up, one after the other.
func BenchmarkServe(b *testing.B) {
	e := setupBench(b)
	b.Run("routed", func(b *testing.B) { benchServe(b, e, "/sys/bench") })
	b.Run("bypass", func(b *testing.B) { benchServe(b, e, "/bypass/bench") })
}

func benchServe(b *testing.B, e *benchSetup, path string) {
	b.SetParallelism(max(1, benchClients/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := e.get(path); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func register(b testing.TB, regURL, name, target string) {
	b.Helper()
	body := apitest.RegBody(name, target, "bench")
	resp, err := http.Post(regURL+"/api/servers/register", "application/json", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(resp.Body)
		b.Fatalf("registering %s: %d %s", name, resp.StatusCode, msg)
	}
}

// BenchmarkRewriteManyHeaders is the routed path's header rewrite alone, for requests
// with many distinct headers: the cost per header (ns/header) must stay flat as the
// count grows (looking each name up among all the others would make it grow with the
// count).
func BenchmarkRewriteManyHeaders(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			req := httptest.NewRequest("GET", "/sys/x", nil)
			for i := 0; i < n; i++ {
				req.Header.Set(fmt.Sprintf("X-Header-%05d", i), "v")
			}
			rr := &filteredRequest{headers: requestHeaders(req, req.Host)}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				out := req.Clone(req.Context())
				rewriteFiltered(&httputil.ProxyRequest{In: req, Out: out}, rr)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/header")
		})
	}
}
