package inhost

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"switchyard/internal/contract"
	"switchyard/wasmhost"
)

// Benchmarks of the real filter.wasm in the wasmhost (compiler engine):
//
//   - BenchmarkFilterRouted / BenchmarkFilter404: the filter's cost per request over the
//     full stream lifecycle Envoy drives (on_context_create, on_request_headers,
//     on_response_headers, on_log, on_done, on_delete), with tables of 10 and 100,000
//     names. Target: ≤ 2 µs median routed, and the 100k/10 ratio ≤ 1.1 (the router
//     does O(1) work per request).
//   - BenchmarkRouterMemory: a router VM's linear memory after 1M, 2M and 5M requests.
//     Target: flat within 1 MiB from 1M to 5M.
//
// Each benchmark first checks that the filter gives the right answer, then measures.
// The per-request loop runs in batches; ns/req-median is the median batch time per
// request, steadier than the mean (ns/op) on a noisy 2-core machine.
//
//	go test -run '^$' -bench 'BenchmarkFilter' -benchtime 200000x ./filter/inhost/
//	go test -run '^$' -bench 'BenchmarkRouterMemory' -benchtime 1x ./filter/inhost/

// benchBatch is the number of requests timed together for the median.
const benchBatch = 1000

// benchSizes are the table sizes the per-request figures are measured at.
var benchSizes = []int{10, 100_000}

// benchRoutes gives a table of n names "name-<i>", each with a target with a port.
func benchRoutes(n int) map[string]string {
	routes := make(map[string]string, n)
	for i := 0; i < n; i++ {
		routes["name-"+strconv.Itoa(i)] = benchTarget(i)
	}
	return routes
}

func benchTarget(i int) string {
	return "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + ":8080"
}

// benchRouter starts the filter with a table of n names and gives one router VM. The
// sync VM is closed once the table is loaded: the shared data stays with the router
// (same vm_id), and no poll or tick of the sync runs during the measurement, so the
// host-call counts are the router's alone.
func benchRouter(b *testing.B, n int, env map[string]string) (*fEnv, *wasmhost.VM) {
	b.Helper()
	e := newFEnv(b, wasmhost.Options{}, benchRoutes(n))
	syncVM := e.vm(contract.RootSync, filterConfig(""))
	r := e.vmWith(wasmhost.PluginConfig{Name: "switchyard", RootID: contract.RootRouter, VMID: "switchyard", Configuration: filterConfig(""), Env: env})
	e.waitLog("sync: table at revision 1: "+strconv.Itoa(n)+" servers", 60*time.Second)
	if err := syncVM.Close(); err != nil {
		b.Fatalf("closing the sync VM: %v", err)
	}
	return e, r
}

// benchRequest is one request for the benchmarks: a client's GET under /sys with a
// few ordinary headers, as a browser's API call carries them.
func benchRequest(name string) wasmhost.Headers {
	return wasmhost.Headers{
		{":method", "GET"}, {":path", "/sys/logs/app.log?tail=100"}, {":authority", "proxy.example:8443"},
		{":scheme", "https"}, {"user-agent", "Mozilla/5.0"}, {"accept", "application/json"},
		{"x-server-name", name},
	}
}

var benchResponse = wasmhost.Headers{{":status", "200"}, {"content-type", "text/plain"}}

// lifecycle drives one stream through the callbacks Envoy calls for a request that
// is answered: create, request headers, response headers, log/done/delete. It
// reports whether the filter sent a local reply (and with what status).
func lifecycle(vm *wasmhost.VM, req wasmhost.Headers) (wasmhost.Action, *wasmhost.LocalResponse, error) {
	s, err := vm.NewStream(wasmhost.StreamAttributes{})
	if err != nil {
		return wasmhost.Stop, nil, err
	}
	act, err := s.RequestHeaders(req, true)
	if err != nil {
		return act, nil, err
	}
	local := s.LocalResponse()
	if local == nil {
		if _, err := s.ResponseHeaders(benchResponse, true); err != nil {
			return act, nil, err
		}
	}
	return act, local, s.Close()
}

// checkAnswer runs one full request and fails the benchmark unless the filter routes
// name to want (want "": answers 404 unknown_server).
func checkAnswer(b *testing.B, vm *wasmhost.VM, name, want string) {
	b.Helper()
	got := fRequestHeaders(b, vm, benchRequest(name))
	if want == "" {
		if got.status() != 404 || got.errorCode() != contract.CodeUnknownServer {
			b.Fatalf("%s: status %d %q, want 404 unknown_server", name, got.status(), got.errorCode())
		}
		return
	}
	if got.local != nil || got.action != wasmhost.Continue || got.header(":authority") != want {
		b.Fatalf("%s: status %d, action %v, :authority %q; want routed to %q", name, got.status(), got.action, got.header(":authority"), want)
	}
}

// perRequest measures b.N requests through vm in batches, with the request of each
// index given by next, and reports ns/req-median and host calls per request. A
// request whose outcome differs from wantLocal (a local reply or not) fails.
func perRequest(b *testing.B, e *fEnv, vm *wasmhost.VM, wantLocal bool, next func(i int) wasmhost.Headers) float64 {
	b.Helper()
	reqs := make([]wasmhost.Headers, benchBatch)
	for i := range reqs {
		reqs[i] = next(i)
	}
	before := e.h.HostcallCounts()
	batches := make([]float64, 0, b.N/benchBatch+1)
	cpu0 := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(benchBatch, b.N-done)
		start := time.Now()
		for i := 0; i < n; i++ {
			act, local, err := lifecycle(vm, reqs[i])
			if err != nil {
				b.Fatalf("request %d: %v", done+i, err)
			}
			if (local != nil) != wantLocal || (act == wasmhost.Continue) == wantLocal {
				b.Fatalf("request %d: action %v, local reply %v; want local reply %v", done+i, act, local, wantLocal)
			}
		}
		if n == benchBatch {
			batches = append(batches, float64(time.Since(start).Nanoseconds())/float64(n))
		}
		done += n
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/req")
	reportHostcalls(b, before, e.h.HostcallCounts(), b.N)
	if len(batches) == 0 {
		return 0 // b.N below one batch (the first probing run): no median
	}
	slices.Sort(batches)
	med := batches[len(batches)/2]
	b.ReportMetric(med, "ns/req-median")
	return med
}

// reportHostcalls reports host calls per request, in total and for the calls a
// request may make, from two HostcallCounts snapshots.
func reportHostcalls(b *testing.B, before, after map[string]int64, n int) {
	total := int64(0)
	for name, v := range after {
		d := v - before[name]
		total += d
		if d > 0 && testing.Verbose() {
			b.Logf("%s: %.2f per request", name, float64(d)/float64(n))
		}
	}
	b.ReportMetric(float64(total)/float64(n), "hostcalls/req")
}

// BenchmarkFilterRouted: a request for a registered name, rewritten to its target.
func BenchmarkFilterRouted(b *testing.B) {
	benchPerSize(b, func(b *testing.B, e *fEnv, vm *wasmhost.VM, n int) float64 {
		checkAnswer(b, vm, "name-0", benchTarget(0))
		checkAnswer(b, vm, "name-"+strconv.Itoa(n-1), benchTarget(n-1))
		// Names spread over the table, so a big table is not measured on one hot key.
		return perRequest(b, e, vm, false, func(i int) wasmhost.Headers {
			return benchRequest("name-" + strconv.Itoa(i*7919%n))
		})
	})
}

// BenchmarkFilter404: a valid name that is not registered, answered 404 by the filter.
func BenchmarkFilter404(b *testing.B) {
	benchPerSize(b, func(b *testing.B, e *fEnv, vm *wasmhost.VM, n int) float64 {
		checkAnswer(b, vm, "name-x", "")
		return perRequest(b, e, vm, true, func(i int) wasmhost.Headers {
			return benchRequest("unknown-" + strconv.Itoa(i))
		})
	})
}

// benchPerSize starts one environment per table size (the parent benchmark runs once,
// so the 100,000-name sync is paid once), runs measure as the sub-benchmark
// names=<n>, and reports the 100k/10 ratio of the medians in the last one.
func benchPerSize(b *testing.B, measure func(b *testing.B, e *fEnv, vm *wasmhost.VM, n int) float64) {
	medians := map[int]float64{}
	for _, n := range benchSizes {
		e, vm := benchRouter(b, n, nil)
		b.Run("names="+strconv.Itoa(n), func(b *testing.B) {
			medians[n] = measure(b, e, vm, n)
			if small, big := medians[benchSizes[0]], medians[n]; n != benchSizes[0] && small > 0 && big > 0 {
				b.ReportMetric(big/small, "ratio-to-names=10")
			}
		})
	}
}

// memoryCheckpoints are the request counts at which BenchmarkRouterMemory reads the
// router VM's linear memory.
var memoryCheckpoints = []int{1_000_000, 2_000_000, 5_000_000}

// memoryBound is how long the 5M requests may take before the benchmark gives up.
const memoryBound = 3 * time.Minute

// BenchmarkRouterMemory drives 5,000,000 requests (9 routed to 1 unknown, through a
// table of 10 names) through one router VM with the production configuration (no
// GOGC or other environment) and reports its linear memory, which never shrinks, at
// 1M, 2M and 5M requests. The work is fixed whatever b.N: run it with -benchtime 1x.
func BenchmarkRouterMemory(b *testing.B) {
	const names = 10
	e, vm := benchRouter(b, names, nil)
	checkAnswer(b, vm, "name-3", benchTarget(3))
	checkAnswer(b, vm, "name-x", "")
	reqs := make([]wasmhost.Headers, 100)
	for i := range reqs {
		if i%10 == 9 {
			reqs[i] = benchRequest("unknown-" + strconv.Itoa(i))
		} else {
			reqs[i] = benchRequest("name-" + strconv.Itoa(i%names))
		}
	}
	total := memoryCheckpoints[len(memoryCheckpoints)-1]
	before := e.h.HostcallCounts()
	mib := func() float64 { return float64(vm.MemoryBytes()) / (1 << 20) }
	start0 := mib()
	at := map[int]float64{}
	deadline := time.Now().Add(memoryBound)
	b.ResetTimer()
	next := 0
	for i := 1; i <= total; i++ {
		req := reqs[i%len(reqs)]
		_, local, err := lifecycle(vm, req)
		if err != nil {
			b.Fatalf("request %d: %v", i, err)
		}
		if (local != nil) != (i%len(reqs)%10 == 9) {
			b.Fatalf("request %d: local reply %v, wrong outcome", i, local)
		}
		if i == memoryCheckpoints[next] {
			at[i] = mib()
			next++
		}
		if i%100_000 == 0 && time.Now().After(deadline) {
			b.Fatalf("only %d of %d requests within %v", i, total, memoryBound)
		}
	}
	b.StopTimer()
	elapsed := b.Elapsed()
	reportHostcalls(b, before, e.h.HostcallCounts(), total)
	b.ReportMetric(start0, "MiB-start")
	for _, c := range memoryCheckpoints {
		b.ReportMetric(at[c], "MiB-at-"+strconv.Itoa(c/1_000_000)+"M")
	}
	b.ReportMetric(at[total]-at[memoryCheckpoints[0]], "MiB-growth-1M-5M")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(total), "ns/req")
	if err := vm.Err(); err != nil {
		b.Fatalf("router VM died: %v", err)
	}
}
