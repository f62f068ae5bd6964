package inhost

import (
	"strconv"
	"testing"
	"time"

	"switchyard/wasmhost"
)

// BenchmarkSyncMemory measures the sync VM's linear memory (which never shrinks, so it
// is the peak) with 100,000 names (issue 16 item 4): after loading the table as one
// answer and as pages of 5,000 names, and how much it grows over 1,000 deltas after
// that. A paged load holds one page plus the assembly (only the names that differ
// from the live table), so it needs less than a load in one answer; a delta costs its
// own size.
//
//	go test -run '^$' -bench 'BenchmarkSyncMemory' -benchtime 1x ./filter/inhost/
func BenchmarkSyncMemory(b *testing.B) {
	const names = 100_000
	for _, page := range []int{0, 5000} {
		b.Run("pages-of-"+strconv.Itoa(page), func(b *testing.B) {
			for b.Loop() {
				e := newFEnvV2(b, wasmhost.Options{}, benchRoutes(names))
				e.v2.set(func() { e.v2.pageNames = page })
				syncVM := e.vm("sync", filterConfig(""))
				e.waitLog("sync: table at revision 1: "+strconv.Itoa(names)+" servers", 120*time.Second)
				loaded := syncVM.MemoryBytes()
				for i := 0; i < 1000; i++ {
					e.v2.put("name-"+strconv.Itoa(i), "10.9."+strconv.Itoa(i>>8)+"."+strconv.Itoa(i&255))
				}
				e.waitLog("sync: table at revision 1001:", 120*time.Second)
				after := syncVM.MemoryBytes()
				b.ReportMetric(float64(loaded)/(1<<20), "MiB-loaded")
				b.ReportMetric(float64(after-loaded)/(1<<20), "MiB-grown-over-1000-changes")
			}
		})
	}
}

// TestSyncMemoryFlatOverDeltas: once a table of 20,000 names is loaded, 2,000 one-name
// changes (deltas) do not grow the sync VM's memory by more than 2 MiB: an update
// holds its answer and its changes, never a copy of the table.
func TestSyncMemoryFlatOverDeltas(t *testing.T) {
	e := newFEnvV2(t, wasmhost.Options{}, benchRoutes(20_000))
	syncVM := e.vm("sync", filterConfig(""))
	e.waitLog("sync: table at revision 1: 20000 servers", 60*time.Second)
	for i := 0; i < 200; i++ { // let the heap reach its working size first
		e.v2.put("name-"+strconv.Itoa(i), "10.8.0."+strconv.Itoa(i&255))
	}
	e.waitLog("sync: table at revision 201:", 60*time.Second)
	before := syncVM.MemoryBytes()
	for i := 0; i < 2000; i++ {
		e.v2.put("name-"+strconv.Itoa(i%500), "10.9."+strconv.Itoa(i>>8)+"."+strconv.Itoa(i&255))
		if i%3 == 0 {
			e.v2.put("extra-"+strconv.Itoa(i), "10.7.0.1") // new names: the index grows by appends
		}
	}
	e.waitLog("sync: table at revision 2868:", 60*time.Second)
	after := syncVM.MemoryBytes()
	t.Logf("sync VM memory: %d KiB with 20,000 names, %d KiB after 2,667 more changes", before>>10, after>>10)
	if after > before+2<<20 {
		t.Errorf("the sync VM's memory grew from %d to %d KiB over 2,667 changes", before>>10, after>>10)
	}
}
