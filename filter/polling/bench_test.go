package polling

import (
	"strconv"
	"testing"
)

// BenchmarkApplyDelta: one one-name delta applied to a table of 10 and of 100,000
// names. The cost (time, bytes allocated, shared-data bytes written) follows the
// change, not the table.
//
//	go test -run '^$' -bench 'BenchmarkApplyDelta' ./filter/polling/
func BenchmarkApplyDelta(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		b.Run(strconv.Itoa(n)+"-names", func(b *testing.B) {
			h := &countingHost{fakeHost: newFakeHost()}
			m := New(testCfg, Identity{}, h, 1)
			m.Tick(0)
			m.Answer(0, full("L", 1, table(n, "n"), ""))
			rev := uint64(1)
			h.bytes = 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				r := delta("L", rev, rev+1, map[string]string{"n" + strconv.Itoa(i%n): "10.9." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)})
				b.StartTimer()
				m.Answer(0, r)
				rev++
			}
			b.StopTimer()
			if m.Revision() != rev {
				b.Fatalf("revision %d, want %d", m.Revision(), rev)
			}
			b.ReportMetric(float64(h.bytes)/float64(b.N), "shared-bytes/op")
		})
	}
}

// BenchmarkFullTable100k: a first full table of 100,000 names in one answer, parsed
// and written.
func BenchmarkFullTable100k(b *testing.B) {
	body := full("L", 1, table(100_000, "name-"), "").Body
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		h := newFakeHost()
		m := New(testCfg, Identity{}, h, 1)
		m.Tick(0)
		m.Answer(0, Reply{Status: "200", Body: body})
		if m.Size() != 100_000 {
			b.Fatalf("size %d", m.Size())
		}
	}
}
