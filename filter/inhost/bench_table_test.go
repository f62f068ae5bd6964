package inhost

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"switchyard/internal/testkit/wait"
	"switchyard/wasmhost"
)

// BenchmarkTable1M: full tables of 1,000,000 names (the registrar's default pages of
// 4 MiB) streamed into shared data and switched (filter/polling/layout.go). It reports:
//
//   - load-s: from the sync VM's start until the first table is switched in (the log
//     line of the last page). Target ≤ 5 s.
//
//   - reload-s, reload-max-s: from the registrar's history being replaced (a new table
//     whose targets all differ) until the switch, while a router answers a steady
//     request loop; the median and the longest of three such reloads (this machine's
//     speed drifts from run to run). Target ≤ 5 s; other-table-answers (answers from
//     the old table after the first from the new one) and local-replies (503/404 for
//     names both tables hold) must be 0 in every reload, and the benchmark fails
//     otherwise.
//
//   - poller-MiB-loaded, poller-MiB-10-reloads: the sync VM's linear memory (which
//     never shrinks, so it is the peak) after the first table and after 10 more full
//     tables. Target ≤ 64 MiB.
//
//   - router-MiB: the router VM's linear memory after the request loop.
//
//   - shared-MiB, shared-keys: keys and values in the host's shared data once the old
//     generation is emptied; shared-index-MiB: the host's index and entry table for
//     them (its own cost per key, as a hash map's is in Envoy).
//
//     go test -run '^$' -bench 'BenchmarkTable1M' -benchtime 1x -timeout 30m ./filter/inhost/
//
// reloadRuns is how many reloads under load BenchmarkTable1M times.
const reloadRuns = 3

func BenchmarkTable1M(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		e := newFEnv(b, wasmhost.Options{}, tableOf(n, 1))
		start := time.Now()
		syncVM := e.vm("sync", filterConfig(""))
		e.waitLog("sync: table at revision 1: 1000000 servers", 5*time.Minute)
		load := time.Since(start)
		b.Logf("first table of %d names loaded in %v", n, load)
		loaded := syncVM.MemoryBytes()
		r := e.vm("router", filterConfig(""))
		waitRouted(b, r, atomicName(n-1), "10.1."+strconv.Itoa((n-1)>>8&255)+"."+strconv.Itoa((n-1)&255)+":8080", 10*time.Second)

		// Three reloads under load, each a new history whose targets all differ from the
		// last (tables 2, 3, 4); before the second and third the generation left by the
		// one before is emptied (a full table waits for that, and it is not what is timed).
		var reloads []float64
		var requests, otherTable, localReplies int64
		for k := 1; k <= reloadRuns; k++ {
			if k > 1 {
				waitEmptied(b, e, retiredGen(e))
			}
			stop := make(chan struct{})
			l := startLoad(r, n, k, k+1, stop, 50_000_000, 5*time.Minute)
			full := e.countLogs("from a full table")
			// replace writes the new history, then ends the old registrar's long polls:
			// the sync asks for the new table as it returns.
			e.reg.replace(tableOf(n, k+1))
			began := time.Now()
			wait.Eventually(b, 5*time.Minute, func() string {
				if e.countLogs("from a full table") == full {
					return "the reload did not finish; logs:\n" + e.logText()
				}
				return ""
			})
			reloads = append(reloads, time.Since(began).Seconds())
			time.Sleep(time.Second) // the loop goes on on the new table
			close(stop)
			<-l.done
			if l.err != nil {
				b.Fatal(l.err)
			}
			if l.oldAfterNew != 0 || l.status != 0 || l.bad != 0 || l.toN == 0 {
				b.Fatalf("during reload %d: %d answers from the old table after the new, %d local replies, %d from neither, %d from the new; first: %s",
					k, l.oldAfterNew, l.status, l.bad, l.toN, l.firstBad)
			}
			requests += int64(l.requests)
			otherTable += int64(l.oldAfterNew)
			localReplies += int64(l.status)
			b.Logf("reload %d of %d names under load: %.2f s, %d requests", k, n, reloads[k-1], l.requests)
		}
		// 10 more full tables.
		for i := 1; i <= 10; i++ {
			forceFullTable(b, e, i, 5*time.Minute)
		}
		waitEmptied(b, e, retiredGen(e))
		keys, bytes := e.h.SharedDataSize("switchyard")
		b.ReportMetric(load.Seconds(), "load-s")
		slices.Sort(reloads)
		b.ReportMetric(reloads[len(reloads)/2], "reload-s")
		b.ReportMetric(reloads[len(reloads)-1], "reload-max-s")
		b.ReportMetric(float64(requests), "requests-during-reloads")
		b.ReportMetric(float64(otherTable), "other-table-answers")
		b.ReportMetric(float64(localReplies), "local-replies")
		b.ReportMetric(float64(loaded)/(1<<20), "poller-MiB-loaded")
		b.ReportMetric(float64(syncVM.MemoryBytes())/(1<<20), "poller-MiB-10-reloads")
		b.ReportMetric(float64(r.MemoryBytes())/(1<<20), "router-MiB")
		b.ReportMetric(float64(bytes)/(1<<20), "shared-MiB")
		b.ReportMetric(float64(e.h.SharedDataOverhead("switchyard"))/(1<<20), "shared-index-MiB")
		b.ReportMetric(float64(keys), "shared-keys")
	}
}
