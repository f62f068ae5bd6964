package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"switchyard/internal/testkit/load"
	"switchyard/registrar/store"
)

// System benchmarks of the registrar, on the real handler and store over
// real HTTP on loopback, with the data file on disk (every write fsynced):
//
//   - BenchmarkRegistrarWrites: 1,000 registrations from 50 concurrent clients; the
//     latency of each, from sending to the durable acknowledgement. Afterwards every
//     one must be in the table and in the data file read back from disk (no loss).
//     Reports p50/p99/max and writes per durable commit (group commit).
//   - BenchmarkRegistrarFanout: 1,000 long-poll watchers (GET /v1/routes?after=R&wait=30)
//     waiting, one registration; the time from sending that write until the last
//     watcher has the new table. Target ≤ 100 ms. Every watcher must get the new
//     revision with the new server in it.
//
// In-process rather than the built binary, to read the store's commit counter and the
// watcher gauge directly; client and server share the machine's cores either way. Each
// benchmark does its whole workload once per b.N iteration and reports figures over
// all iterations; run them with -benchtime 1x:
//
//	go test -run '^$' -bench 'BenchmarkRegistrarWrites|BenchmarkRegistrarFanout' -benchtime 1x ./registrar/

const (
	writeCount   = 1000
	writeClients = 50
	watcherCount = 1000
)

func BenchmarkRegistrarWrites(b *testing.B) {
	var latencies []time.Duration
	var writes, commits float64
	for iter := range b.N {
		b.StopTimer()
		reg := startRegistrarB(b) // a fresh table and data file each time
		commits0 := dtoCounter{}.readB(b, reg)
		client := load.NewClient(writeClients)
		sent, lat := make([]time.Time, writeCount), make([]time.Duration, writeCount)
		b.StartTimer()
		res, err := load.Run(load.Options{
			Concurrency: writeClients, Duration: 2 * time.Minute, MaxRequests: writeCount, Client: client,
			Request: func(i int) (*http.Request, error) {
				sent[i] = time.Now()
				req, err := http.NewRequest("POST", reg.URL+"/api/servers/register", strings.NewReader(regBody(writeName(iter, i), writeTarget(i), "bench")))
				if err == nil {
					req.Header.Set("Content-Type", "application/json") // writes must say JSON (browser guard)
				}
				return req, err
			},
			Check: func(i int, resp *http.Response, body []byte) error {
				lat[i] = time.Since(sent[i])
				if resp.StatusCode != 200 || !strings.Contains(string(body), `"success":true`) {
					return fmt.Errorf("register %s: %d %s", writeName(iter, i), resp.StatusCode, body)
				}
				return nil
			},
		})
		b.StopTimer()
		client.CloseIdleConnections()
		if err == nil {
			err = res.Err()
		}
		if err == nil && res.Requests != writeCount {
			err = fmt.Errorf("%d of %d registrations answered within the time bound", res.Requests, writeCount)
		}
		if err != nil {
			b.Fatal(err)
		}
		checkAllRegistered(b, reg, iter)
		latencies = append(latencies, lat...)
		writes += writeCount
		commits += dtoCounter{}.readB(b, reg) - commits0
	}
	b.ReportMetric(load.Millis(load.Percentile(latencies, 50)), "p50-ms")
	b.ReportMetric(load.Millis(load.Percentile(latencies, 99)), "p99-ms")
	b.ReportMetric(load.Millis(load.Percentile(latencies, 100)), "max-ms")
	b.ReportMetric(writes/commits, "writes/commit")
}

func writeName(iter, i int) string { return fmt.Sprintf("w%d-%d", iter, i) }

func writeTarget(i int) string {
	return fmt.Sprintf("10.%d.%d.%d:8080", i/62500%250, i/250%250, i%250+1)
}

// checkAllRegistered requires every registration of iteration iter in the served table
// and in the data file as read back from disk, with its target.
func checkAllRegistered(b *testing.B, reg *testRegistrar, iter int) {
	b.Helper()
	res := call(b, "GET", reg.URL+"/api/servers", "").Result(b)
	if res.Servers == nil {
		b.Fatalf("GET /api/servers has no \"servers\": %+v", res)
	}
	served := map[string]string{}
	for _, s := range *res.Servers {
		served[s.Name] = s.Target
	}
	rev, onDisk, err := store.ReadData(reg.Data)
	if err != nil {
		b.Fatalf("reading the data file back: %v", err)
	}
	if res.Revision == nil || *res.Revision != rev {
		b.Fatalf("the data file is at revision %d, the table at %v", rev, res.Revision)
	}
	for i := range writeCount {
		name, want := writeName(iter, i), writeTarget(i)
		if served[name] != want || onDisk[name].Target != want {
			b.Fatalf("%s lost: served %q, on disk %q, want %q", name, served[name], onDisk[name].Target, want)
		}
	}
}

func BenchmarkRegistrarFanout(b *testing.B) {
	reg := startRegistrarB(b)
	register(b, reg.URL, "fan-0", "10.9.0.1:8080", "bench")
	client := load.NewClient(watcherCount)
	defer client.CloseIdleConnections()
	var worst, median, commit []time.Duration
	b.ResetTimer()
	for iter := range b.N {
		b.StopTimer()
		rev := reg.Store.Current().Revision()
		name := fmt.Sprintf("fan-%d", iter+1)
		woken := make([]time.Duration, watcherCount)
		errs := make(chan error, watcherCount)
		var start time.Time // set before the write is sent; read by watchers after their answer
		var startMu sync.RWMutex
		startMu.Lock()
		var wg sync.WaitGroup
		for w := range watcherCount {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := watch(client, fmt.Sprintf("%s/v1/routes?after=%d&wait=30", reg.URL, rev))
				at := time.Now()
				if err == nil && (got.Revision <= rev || got.Routes[name] == "") {
					err = fmt.Errorf("watcher %d woke with revision %d and %s → %q; want a revision after %d with %s in it",
						w, got.Revision, name, got.Routes[name], rev, name)
				}
				if err != nil {
					errs <- err
					return
				}
				startMu.RLock()
				woken[w] = at.Sub(start)
				startMu.RUnlock()
			}()
		}
		waitWatchers(b, reg, watcherCount)
		b.StartTimer()
		start = time.Now()
		startMu.Unlock()
		register(b, reg.URL, name, "10.9.0.2:8080", "bench")
		acked := time.Since(start)
		wg.Wait()
		b.StopTimer()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		worst = append(worst, load.Percentile(woken, 100))
		median = append(median, load.Percentile(woken, 50))
		commit = append(commit, acked)
	}
	b.ReportMetric(load.Millis(load.Percentile(worst, 100)), "all-woken-ms")
	b.ReportMetric(load.Millis(load.Percentile(median, 50)), "p50-woken-ms")
	b.ReportMetric(load.Millis(load.Percentile(commit, 50)), "write-ack-ms")
}

// watch sends one long-poll and reads its whole answer.
func watch(c *http.Client, url string) (routesBody, error) {
	var rb routesBody
	resp, err := c.Get(url)
	if err != nil {
		return rb, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return rb, err
	}
	if resp.StatusCode != 200 {
		return rb, fmt.Errorf("long-poll answered %d %s, want 200 with the new table", resp.StatusCode, body)
	}
	return rb, json.Unmarshal(body, &rb)
}

// waitWatchers waits until n long-polls are parked on the current snapshot, as the
// registrar's own gauge counts them.
func waitWatchers(b *testing.B, reg *testRegistrar, n int) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var m dto.Metric
		if err := reg.Metrics.watchers.Write(&m); err != nil {
			b.Fatal(err)
		}
		got := int(m.GetGauge().GetValue())
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d long-polls waiting after 30 s", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
