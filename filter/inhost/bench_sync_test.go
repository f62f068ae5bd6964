package inhost

import (
	"strconv"
	"testing"
	"time"

	"switchyard/registrar/server"
	"switchyard/wasmhost"
)

// BenchmarkSyncMemory measures the sync VM's linear memory (which never shrinks, so it
// is the peak) with 100,000 names (issue 16 item 4): after loading the table as one
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
// memory does not grow with the number of changes it applies: after the heap has
// reached its working size (3,000 changes), 3,000 more leave it within 2 MiB. An
// update holds its answer and its changes, never a copy of the table. The VM runs with
// GOGC=10 (Envoy passes vm_config environment variables to the module) so that the
// working size is reached within the test; at the default GOGC the heap settles later
// and higher (about 35 MiB after some 5,000 polls, measured), but settles.
func TestSyncMemoryFlatOverDeltas(t *testing.T) {
	e := newFEnv(t, wasmhost.Options{}, benchRoutes(20_000))
	syncVM := e.vmWith(wasmhost.PluginConfig{Name: "switchyard", RootID: "sync", VMID: "switchyard",
		Configuration: filterConfig(""), Env: map[string]string{"GOGC": "10"}})
	e.waitLog("sync: table at revision 1: 20000 servers", 60*time.Second)
	// Changes go in batches of 100, each applied before the next, so every delta
	// carries about the same number of names however fast the machine polls (on a
	// busy machine a free-running writer makes fewer, larger deltas, and the VM's
	// memory, which never shrinks, then follows the largest answer, not the count).
	changes := func(n int) {
		t.Helper()
		var rev uint64
		for i := 0; i < n; i++ {
			rev = e.reg.putStore("name-"+strconv.Itoa(i%500), "10.9."+strconv.Itoa(i>>8&255)+"."+strconv.Itoa(i&255))
			if i%3 == 0 {
				rev = e.reg.putStore("extra-"+strconv.FormatUint(rev, 10), "10.7.0.1") // new names: the index grows by appends
			}
			if i%100 == 99 || i == n-1 {
				e.waitLog("sync: table at revision "+strconv.FormatUint(rev, 10)+":", 60*time.Second)
			}
		}
	}
	changes(3000)
	before := syncVM.MemoryBytes()
	changes(3000)
	after := syncVM.MemoryBytes()
	polls, _ := e.reg.stats()
	t.Logf("sync VM memory: %d KiB after 4,000 changes, %d KiB after 8,000 (%d polls)", before>>10, after>>10, polls)
	if after > before+2<<20 {
		t.Errorf("the sync VM's memory grew from %d to %d KiB over 4,000 more changes", before>>10, after>>10)
	}
}
