package inhost

import (
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"switchyard/internal/contract"
	"switchyard/internal/testkit/bin"
	"switchyard/wasmhost"
)

// Benchmarks of the real filter.wasm in the wasmhost (compiler engine):
//
//   - BenchmarkFilter: the filter's cost per request over the full stream lifecycle
//     Envoy drives (on_context_create, on_request_headers, on_response_headers,
//     on_log, on_done, on_delete), routed and answered 404, with tables of 10 and
//     1,000,000 names, each measured against a reference in the same run:
//     routed/names=10 and 404/names=10 against the floor (testdata/floorfilter, a
//     do-nothing filter on the same SDK: what no SDK filter can go under; target for
//     routed: ratio-to-floor ≤ 1.25), the 1,000,000-name runs against the same request
//     at 10 names (target: ratio-to-names=10 ≤ 1.10, since the router does O(1) work
//     per request whatever the table size).
//   - BenchmarkRouterMemory: a router VM's linear memory after 1M, 2M and 5M requests.
//     Target: flat within 1 MiB from 1M to 5M.
//
// Each benchmark first checks that the filter gives the right answer, then measures.
// The requests run in batches of benchBatch, the measured VM's and the reference's in
// turn, so that both see the same machine: on a shared machine the load of a
// neighbour changes from one second to the next, and a ratio of figures taken minutes
// apart says more about the neighbours than about the filter. ns/req-median is the
// median batch time per request of the measured VM, <ref>-ns/req-median the
// reference's, ratio-to-<ref> the median of the batch-by-batch ratios; ns/op, B/op and
// allocs/op count the measured VM's batches only (host side included).
//
//	go test -run '^$' -bench '^BenchmarkFilter$' -benchtime 200000x ./filter/inhost/
//	go test -run '^$' -bench 'BenchmarkRouterMemory' -benchtime 1x ./filter/inhost/
//
// With -cpuprofile, the host's side shows by name; the guest's compiled code has no Go
// frames and shows as runtime._ExternalCode.

// benchBatch is the number of requests timed together.
const benchBatch = 1000

// benchLargeTable is the big table the per-request cost is compared at.
const benchLargeTable = 1_000_000

// benchRoutes gives a table of n names "name-<i>", each with a target without a port
// (the router adds default_port, the seed's usual registration: a bare IP). At
// 1,000,000 names the registrar's answer is 28 MB, under the 32 MiB an http call may
// carry.
func benchRoutes(n int) map[string]string {
	routes := make(map[string]string, n)
	for i := 0; i < n; i++ {
		routes["name-"+strconv.Itoa(i)] = benchTarget(i)
	}
	return routes
}

func benchTarget(i int) string {
	return "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
}

// benchAuthority is the :authority the router gives benchTarget(i): filterConfig's
// default_port added.
func benchAuthority(i int) string { return benchTarget(i) + ":8080" }

// benchRouter starts the filter with a table of n names and gives one router VM. The
// sync VM is closed once the table is loaded: the shared data stays with the router
// (same vm_id), and no poll or tick of the sync runs during the measurement, so the
// host-call counts are the router's alone.
func benchRouter(b *testing.B, n int) (*fEnv, *wasmhost.VM) {
	b.Helper()
	return benchRouterOf(b, benchRoutes(n))
}

// benchRouterOf is benchRouter with a table of its own (name → target-set string).
func benchRouterOf(b *testing.B, routes map[string]string) (*fEnv, *wasmhost.VM) {
	b.Helper()
	n := len(routes)
	e := newFEnv(b, wasmhost.Options{}, routes)
	syncVM := e.vm(contract.RootSync, filterConfig(""))
	r := e.vm(contract.RootRouter, filterConfig(""))
	e.waitLog("sync: table at revision 1: "+strconv.Itoa(n)+" servers", time.Minute+time.Duration(n)*100*time.Microsecond)
	if err := syncVM.Close(); err != nil {
		b.Fatalf("closing the sync VM: %v", err)
	}
	return e, r
}

// benchFloor starts the do-nothing SDK filter in a host of its own, as a router root.
func benchFloor(b *testing.B) (*wasmhost.Host, *wasmhost.VM) {
	b.Helper()
	h := wasmhost.New(wasmhost.Options{})
	b.Cleanup(func() { h.Close() })
	m, err := h.Load(b.Context(), bin.Guest(b, "testdata/floorfilter"))
	if err != nil {
		b.Fatalf("loading the floor filter: %v", err)
	}
	vm, err := m.NewVM(b.Context(), wasmhost.PluginConfig{Name: "floor", RootID: contract.RootRouter, VMID: "floor"})
	if err != nil {
		b.Fatalf("starting the floor filter: %v", err)
	}
	b.Cleanup(func() { vm.Close() })
	return h, vm
}

// benchRequest is one request for the benchmarks: a client's GET under /sys with a
// few ordinary headers, as a browser's API call carries them.
func benchRequest(serverName string) wasmhost.Headers {
	return wasmhost.Headers{
		{":method", "GET"}, {":path", "/sys/logs/app.log?tail=100"}, {":authority", "proxy.example:8443"},
		{":scheme", "https"}, {"user-agent", "Mozilla/5.0"}, {"accept", "application/json"},
		{"x-server-name", serverName},
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
// serverName to want (want "": answers 404 unknown_server).
func checkAnswer(b *testing.B, vm *wasmhost.VM, serverName, want string) {
	b.Helper()
	got := fRequestHeaders(b, vm, benchRequest(serverName))
	if want == "" {
		if got.status() != 404 || got.errorCode() != contract.CodeUnknownServer {
			b.Fatalf("%s: status %d %q, want 404 %s", serverName, got.status(), got.errorCode(), contract.CodeUnknownServer)
		}
		return
	}
	if got.local != nil || got.action != wasmhost.Continue || got.header(":authority") != want {
		b.Fatalf("%s: status %d, action %v, :authority %q; want routed to %q", serverName, got.status(), got.action, got.header(":authority"), want)
	}
}

// benchSide is one VM a benchmark drives: the request of each index, and whether
// every request is answered by a local reply.
type benchSide struct {
	h         *wasmhost.Host
	vm        *wasmhost.VM
	request   func(i int) wasmhost.Headers
	wantLocal bool

	reqs []wasmhost.Headers
}

// run sends the requests from index first through the side's VM, n of them, and
// gives the wall time per request. The requests are built before the clock starts.
func (s *benchSide) run(b *testing.B, first, n int, timed bool) float64 {
	s.reqs = s.reqs[:0]
	for i := first; i < first+n; i++ {
		s.reqs = append(s.reqs, s.request(i))
	}
	if timed {
		b.StartTimer()
	}
	start := time.Now()
	for i, req := range s.reqs {
		act, local, err := lifecycle(s.vm, req)
		if err != nil {
			b.Fatalf("request %d: %v", first+i, err)
		}
		if (local != nil) != s.wantLocal || (act == wasmhost.Continue) == s.wantLocal {
			b.Fatalf("request %d: action %v, local reply %v; want local reply %v", first+i, act, local, s.wantLocal)
		}
	}
	elapsed := time.Since(start)
	if timed {
		b.StopTimer()
	}
	return float64(elapsed.Nanoseconds()) / float64(n)
}

// compare measures b.N requests through side and as many through ref, in alternating
// batches, and reports side's ns/req-median, cpu-ns/req and hostcalls/req, ref's
// median as <refName>-ns/req-median, the median of the batch ratios as
// ratio-to-<refName>, and the ratio of the CPU time the two used as
// cpu-ratio-to-<refName>. (hostcalls/req counts side's host, which is ref's too when
// both VMs share one.)
func compare(b *testing.B, side, ref *benchSide, refName string) {
	b.Helper()
	var sideNs, refNs, ratios []float64
	before := side.h.HostcallCounts()
	var cpu, refCPU int64
	b.ReportAllocs()
	b.StopTimer()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(benchBatch, b.N-done)
		cpu0 := cpuTime()
		r := ref.run(b, done, n, false)
		cpu1 := cpuTime()
		s := side.run(b, done, n, true)
		cpu += cpuTime() - cpu1
		refCPU += cpu1 - cpu0
		if n == benchBatch {
			sideNs, refNs, ratios = append(sideNs, s), append(refNs, r), append(ratios, s/r)
		}
		done += n
	}
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/req")
	if refCPU > 0 {
		// The CPU both sides used, in ratio: steadier than wall time on a shared machine.
		b.ReportMetric(float64(cpu)/float64(refCPU), "cpu-ratio-to-"+refName)
	}
	reportHostcalls(b, before, side.h.HostcallCounts(), b.N)
	if len(ratios) == 0 {
		return // b.N below one batch (the first probing run): no median
	}
	b.ReportMetric(median(sideNs), "ns/req-median")
	b.ReportMetric(median(refNs), refName+"-ns/req-median")
	b.ReportMetric(median(ratios), "ratio-to-"+refName)
}

func median(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
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

// BenchmarkFilter measures the router routed and answering 404, at 10 and 1,000,000
// names, each against its reference (see the top of the file). The parent runs once,
// so the 1,000,000-name table is loaded once for all four.
func BenchmarkFilter(b *testing.B) {
	floorHost, floorVM := benchFloor(b)
	small, smallVM := benchRouter(b, 10)
	large, largeVM := benchRouter(b, benchLargeTable)
	floor := func() *benchSide {
		return &benchSide{h: floorHost, vm: floorVM, request: func(i int) wasmhost.Headers { return benchRequest("name-" + strconv.Itoa(i%10)) }}
	}
	// Routed requests name servers spread over the table, so that a big table is not
	// measured on a few hot keys; 404s name a fresh unknown server each.
	routed := func(e *fEnv, vm *wasmhost.VM, n int) *benchSide {
		return &benchSide{h: e.h, vm: vm, request: func(i int) wasmhost.Headers { return benchRequest("name-" + strconv.Itoa(i*7919%n)) }}
	}
	unknown := func(e *fEnv, vm *wasmhost.VM) *benchSide {
		return &benchSide{h: e.h, vm: vm, wantLocal: true, request: func(i int) wasmhost.Headers { return benchRequest("unknown-" + strconv.Itoa(i)) }}
	}
	checkAnswer(b, smallVM, "name-0", benchAuthority(0))
	checkAnswer(b, smallVM, "name-9", benchAuthority(9))
	checkAnswer(b, smallVM, "unknown-1", "")
	checkAnswer(b, largeVM, "name-0", benchAuthority(0))
	checkAnswer(b, largeVM, "name-"+strconv.Itoa(benchLargeTable-1), benchAuthority(benchLargeTable-1))
	checkAnswer(b, largeVM, "unknown-1", "")
	if got := fRequestHeaders(b, floorVM, benchRequest("name-0")); got.local != nil || got.action != wasmhost.Continue || got.header(":authority") != "proxy.example:8443" {
		b.Fatalf("the floor filter changed the request: status %d, action %v, :authority %q", got.status(), got.action, got.header(":authority"))
	}
	largeNames := "names=" + strconv.Itoa(benchLargeTable)
	b.Run("routed/names=10", func(b *testing.B) { compare(b, routed(small, smallVM, 10), floor(), "floor") })
	b.Run("routed/"+largeNames, func(b *testing.B) {
		compare(b, routed(large, largeVM, benchLargeTable), routed(small, smallVM, 10), "names=10")
	})
	b.Run("404/names=10", func(b *testing.B) { compare(b, unknown(small, smallVM), floor(), "floor") })
	b.Run("404/"+largeNames, func(b *testing.B) { compare(b, unknown(large, largeVM), unknown(small, smallVM), "names=10") })
}

// memoryCheckpoints are the request counts at which BenchmarkRouterMemory reads the
// router VM's linear memory.
var memoryCheckpoints = []int{1_000_000, 2_000_000, 5_000_000}

// memoryBound is how long the 5M requests may take before the benchmark gives up.
const memoryBound = 3 * time.Minute

// BenchmarkRouterMemory drives 5,000,000 requests (9 routed to 1 unknown, through a
// table of 10 names, half of them one target, half four weighted targets) through one
// router VM with the production configuration (passive health check on; no GOGC or
// other environment) and reports its linear memory, which never shrinks, at 1M, 2M
// and 5M requests. The work is fixed whatever b.N: run it with -benchtime 1x.
func BenchmarkRouterMemory(b *testing.B) {
	const names = 10
	routes := benchRoutes(names)
	for i := names / 2; i < names; i++ {
		t := benchTarget(i)
		routes["name-"+strconv.Itoa(i)] = "*" + t + ":9101/40," + t + ":9102/30," + t + ":9103/20," + t + ":9104/10"
	}
	e, vm := benchRouterOf(b, routes)
	checkAnswer(b, vm, "name-3", benchAuthority(3))
	checkAnswer(b, vm, "name-7", benchTarget(7)+":9101")
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

// BenchmarkRouterVsReference measures this router against another build of the filter
// (SWITCHYARD_REF_WASM: e.g. the filter.wasm of the commit before a change) in the
// same run, routed and answering 404 at 10 names, batch by batch as BenchmarkFilter
// does: ratio-to-reference is what the change costs per request. Skipped without the
// variable.
//
//	SWITCHYARD_REF_WASM=/path/to/old/filter.wasm go test -run '^$' -bench 'BenchmarkRouterVsReference' -benchtime 200000x ./filter/inhost/
func BenchmarkRouterVsReference(b *testing.B) {
	path := os.Getenv("SWITCHYARD_REF_WASM")
	if path == "" {
		b.Skip("SWITCHYARD_REF_WASM names no reference filter.wasm")
	}
	refWasm, err := os.ReadFile(path)
	if err != nil {
		b.Fatalf("reading the reference filter: %v", err)
	}
	e, vm := benchRouter(b, 10)
	ref := newFEnvAt(b, wasmhost.Options{}, e.reg.url())
	if ref.mod, err = ref.h.Load(b.Context(), refWasm); err != nil {
		b.Fatalf("loading the reference filter: %v", err)
	}
	ref.vm(contract.RootSync, filterConfig(""))
	refVM := ref.vm(contract.RootRouter, filterConfig(""))
	ref.waitLog("sync: table at revision 1: 10 servers", time.Minute)
	checkAnswer(b, refVM, "name-3", benchAuthority(3))
	checkAnswer(b, vm, "name-3", benchAuthority(3))
	side := func(e *fEnv, vm *wasmhost.VM, routed bool) *benchSide {
		if routed {
			return &benchSide{h: e.h, vm: vm, request: func(i int) wasmhost.Headers { return benchRequest("name-" + strconv.Itoa(i%10)) }}
		}
		return &benchSide{h: e.h, vm: vm, wantLocal: true, request: func(i int) wasmhost.Headers { return benchRequest("unknown-" + strconv.Itoa(i)) }}
	}
	b.Run("routed", func(b *testing.B) { compare(b, side(e, vm, true), side(ref, refVM, true), "reference") })
	b.Run("404", func(b *testing.B) { compare(b, side(e, vm, false), side(ref, refVM, false), "reference") })
}
