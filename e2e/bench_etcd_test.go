package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/internal/testkit/etcdtest"
	"switchyard/internal/testkit/load"
	"switchyard/internal/testkit/proc"
)

// BenchmarkRegistrarStores puts the two stores side by side, through the built
// registrar over real HTTP on loopback:
//
//   - embedded: one registrar with its data file (every write fsynced);
//   - etcd3: two registrar replicas on a 3-member etcd cluster (Debian's etcd-server,
//     internal/testkit/etcdtest) on this machine; writes go through one replica, the long-poll
//     watches the other, so propagation includes etcd's watch to the other replica.
//
// Figures: write acknowledgement p50/p99 (one writer, 200 registrations in a row,
// from sending to the 200 with its revision) and propagation p99 (from that
// acknowledgement until a GET /v1/routes long-poll has a table at that revision or
// later; 0 when the long-poll had it first). Every write must be in the final table.
//
//	go test -run '^$' -bench BenchmarkRegistrarStores -benchtime 1x ./e2e/
func BenchmarkRegistrarStores(b *testing.B) {
	b.Run("embedded", func(b *testing.B) {
		data := filepath.Join(b.TempDir(), "servers.json")
		reg := &process{proc.StartConfig(b, "registrar", proc.Config{Args: []string{"-listen", "127.0.0.1:0", "-data", data, "-allow-cidr", "127.0.0.0/8"}, Clear: []string{"REGISTRAR_"}})}
		measureStore(b, reg.url(), reg.url())
	})
	b.Run("etcd3", func(b *testing.B) {
		c := etcdtest.Start(b, 3)
		w, r := startEtcdRegistrar(b, c), startEtcdRegistrar(b, c)
		measureStore(b, w.url(), r.url())
	})
}

const storeBenchWrites = 200

func measureStore(b *testing.B, writeURL, watchURL string) {
	var acks, props []time.Duration
	for iter := range b.N {
		start := mustRoutes(b, watchURL).Revision

		// The watcher: long-polls and notes when it first had each revision.
		type sighting struct {
			rev uint64
			at  time.Time
		}
		var mu sync.Mutex
		var seen []sighting
		stop := make(chan struct{})
		watched := make(chan error, 1)
		go func() {
			after := start
			for {
				select {
				case <-stop:
					watched <- nil
					return
				default:
				}
				r, err := pollRoutes(watchURL, after, 5)
				if err != nil {
					watched <- err
					return
				}
				if r.status == 200 && r.Revision != after {
					mu.Lock()
					seen = append(seen, sighting{r.Revision, time.Now()})
					mu.Unlock()
					after = r.Revision
				}
			}
		}()

		revs := make([]uint64, storeBenchWrites)
		acked := make([]time.Time, storeBenchWrites)
		b.StartTimer()
		for i := range storeBenchWrites {
			name := fmt.Sprintf("bench-%d-%d", iter, i)
			t0 := time.Now()
			code, body, err := tryRegister(writeURL, name, fmt.Sprintf("127.7.%d.%d:80", i/250, i%250+1))
			acked[i] = time.Now()
			if err != nil || code != 200 {
				b.Fatalf("register %s: %d %s %v", name, code, body, err)
			}
			var res struct {
				Result struct{ Revision uint64 }
			}
			if err := json.Unmarshal([]byte(body), &res); err != nil || res.Result.Revision == 0 {
				b.Fatalf("register %s: no revision in %s", name, body)
			}
			revs[i] = res.Result.Revision
			acks = append(acks, acked[i].Sub(t0))
		}
		b.StopTimer()
		last := revs[storeBenchWrites-1]
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			done := len(seen) > 0 && seen[len(seen)-1].rev >= last
			mu.Unlock()
			if done {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("the long-poll on %s never had revision %d", watchURL, last)
			}
			time.Sleep(5 * time.Millisecond)
		}
		close(stop)
		if err := <-watched; err != nil {
			b.Fatal(err)
		}
		for i, rev := range revs {
			k := sort.Search(len(seen), func(j int) bool { return seen[j].rev >= rev })
			if k == len(seen) {
				b.Fatalf("revision %d of write %d never seen", rev, i)
			}
			props = append(props, max(0, seen[k].at.Sub(acked[i])))
		}
		final := mustRoutes(b, watchURL)
		for i := range storeBenchWrites {
			name := fmt.Sprintf("bench-%d-%d", iter, i)
			if !strings.HasPrefix(final.Routes[name], "127.7.") {
				b.Fatalf("%s acknowledged but not in the table served at %s", name, watchURL)
			}
		}
	}
	b.ReportMetric(load.Millis(load.Percentile(acks, 50)), "ack-p50-ms")
	b.ReportMetric(load.Millis(load.Percentile(acks, 99)), "ack-p99-ms")
	b.ReportMetric(load.Millis(load.Percentile(props, 99)), "propagation-p99-ms")
}
