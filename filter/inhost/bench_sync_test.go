package inhost

import (
	"strconv"
	"testing"
	"time"

	"switchyard/registrar/server"
	"switchyard/wasmhost"
)

// BenchmarkSyncMemory measures the sync VM's linear memory (which never shrinks, so it
// is the peak) with 100,000 names: after loading the table as one
// answer (the registrar's default 4 MiB pages hold it) and as pages of 160 KiB (about
// 5,000 names), and how much it grows over 1,000 deltas after that. A paged load holds one page plus the assembly (only the names that differ
// from the live table), so it needs less than a load in one answer; a delta costs its
// own size.
//
//	go test -run '^$' -bench 'BenchmarkSyncMemory' -benchtime 1x ./filter/inhost/
func BenchmarkSyncMemory(b *testing.B) {
	const names = 100_000
	for _, page := range []int64{server.DefaultPageBytes, 160 << 10} {
		b.Run("page-bytes-"+strconv.FormatInt(page, 10), func(b *testing.B) {
			for b.Loop() {
				e := newFEnvWith(b, wasmhost.Options{}, server.Config{PageBytes: page}, benchRoutes(names))
				syncVM := e.vm("sync", filterConfig(""))
				e.waitLog("sync: table at revision 1: "+strconv.Itoa(names)+" servers", 120*time.Second)
				loaded := syncVM.MemoryBytes()
				for i := 0; i < 1000; i++ {
					e.reg.putStore("name-"+strconv.Itoa(i), "10.9."+strconv.Itoa(i>>8)+"."+strconv.Itoa(i&255))
				}
				e.waitLog("sync: table at revision 1001:", 120*time.Second)
				after := syncVM.MemoryBytes()
				b.ReportMetric(float64(loaded)/(1<<20), "MiB-loaded")
				b.ReportMetric(float64(after-loaded)/(1<<20), "MiB-grown-over-1000-changes")
			}
		})
	}
}

// TestSyncMemoryFlatOverDeltas: with a table of 20,000 names loaded, the sync VM's
// memory does not grow with the number of changes it applies: once it has settled
// after the load, 3,000 more changes leave it within 2 MiB. An update holds its answer
// and its changes, never a copy of the table. The VM runs with GOGC=10 (Envoy passes
// vm_config environment variables to the module) so that the working size is reached
// within the test; at the default GOGC the heap settles later and higher (about 35 MiB
// after some 5,000 polls, measured), but settles.
//
// Why it waits for the memory to settle rather than measuring after a fixed number of
// changes: loading the table raises the VM's memory once, by an amount that varies from
// run to run (20 MiB in some runs, 30–110 MiB in others, measured), and only then is it flat. The
// cause is Go's GC in a wasip1 reactor, not the sync's data (measured with
// GODEBUG=gctrace=1,gcpacertrace=1 and runtime.MemStats in a debug build): the table is
// built while a GC cycle is marking, so it is allocated black and the next cycle's
// estimate of the scan work (the previous cycle's) falls short by about the table's
// size. When a mark assist then finds real work where the pacer expected none left, it
// is credited at heap-remaining ÷ 1000 bytes per unit of work: a single assist can earn
// tens of MiB of allocation credit. On other platforms a background mark worker ends the
// cycle within milliseconds whatever the credit; in a reactor the runtime runs no other
// goroutine unless the one in the callback blocks, and the filter never blocks, so the
// cycle stays open until the credit is spent, and everything allocated meanwhile survives
// it. Linear memory never shrinks, so that cycle's peak stays. Once the pacer's estimate
// has caught up (the cycle after), cycles end on time and the memory is flat for good
// (20,000 further changes, measured). Yielding to the scheduler in the filter would let
// the mark worker end the cycle, but it also runs the background scavenger, which arms a
// runtime timer, after which every GC calls poll_oneoff (fatal on Envoy 1.33–1.37).
func TestSyncMemoryFlatOverDeltas(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, benchRoutes(20_000))
	syncVM := e.vmWith(wasmhost.PluginConfig{Name: "switchyard", RootID: "sync", VMID: "switchyard",
		Configuration: filterConfig(""), Env: map[string]string{"GOGC": "10"}})
	e.waitLog("sync: table at revision 1: 20000 servers", 60*time.Second)
	// Changes go in batches of 100, each applied before the next, so every delta
	// carries about the same number of names however fast the machine polls (on a
	// busy machine a free-running writer makes fewer, larger deltas, and the VM's
	// memory, which never shrinks, then follows the largest answer, not the count).
	j := 0
	changes := func(n int) {
		t.Helper()
		var rev uint64
		for i := 0; i < n; i++ {
			rev = e.reg.putStore("name-"+strconv.Itoa(j%500), "10.9."+strconv.Itoa(j>>8&255)+"."+strconv.Itoa(j&255))
			if j%3 == 0 {
				rev = e.reg.putStore("extra-"+strconv.FormatUint(rev, 10), "10.7.0.1") // new names: the index grows by appends
			}
			j++
			if i%100 == 99 || i == n-1 {
				e.waitLog("sync: table at revision "+strconv.FormatUint(rev, 10)+":", 60*time.Second)
			}
		}
	}
	// Settled: two rounds of 1,000 changes in a row leave the memory unchanged. While
	// the load's GC cycle is open, a round allocates several MiB that all survive, so
	// an open cycle cannot pass for settled.
	var sizes []uint64
	for flat := 0; flat < 2; {
		if len(sizes) == 40 {
			t.Fatalf("the sync VM's memory did not settle within 40,000 changes (KiB after each 1,000): %v", kib(sizes))
		}
		changes(1000)
		sizes = append(sizes, syncVM.MemoryBytes())
		if n := len(sizes); n > 1 && sizes[n-1] == sizes[n-2] {
			flat++
		} else {
			flat = 0
		}
	}
	before := syncVM.MemoryBytes()
	changes(3000)
	after := syncVM.MemoryBytes()
	polls, _ := e.reg.stats()
	t.Logf("sync VM memory (KiB) after each 1,000 changes until settled: %v; %d KiB after 3,000 more (%d polls)", kib(sizes), after>>10, polls)
	if after > before+2<<20 {
		t.Errorf("the sync VM's memory grew from %d to %d KiB over 3,000 more changes", before>>10, after>>10)
	}
}

func kib(sizes []uint64) []uint64 {
	out := make([]uint64, len(sizes))
	for i, s := range sizes {
		out[i] = s >> 10
	}
	return out
}
