package server

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/internal/testkit/apitest"
	"switchyard/internal/testkit/load"
)

// BenchmarkRegistrarScale measures the registrar at 100,000 names, on
// the real handler and store over loopback HTTP with the data on disk (every
// acknowledgement fsynced):
//
//   - ack1-p50/p99-ms: 500 registrations one after another from 1 client (target: p99
//     <= 10 ms); ack50-p50/p99-ms: 1,000 registrations from 50 clients;
//   - delta-bytes: the version-2 answer a proxy one revision behind gets for a
//     one-name change;
//   - target-delta-bytes: the version-3 answer a proxy one revision behind gets when one
//     target of a name with four targets changes weight (PATCH of one target; target:
//     <= 1 KiB);
//   - fanout-all-woken-ms: 1,000 version-2 long-poll watchers, one registration, time
//     until the last has its delta (target <= 100 ms); every one must hold the name.
//
// Run with -benchtime 1x:
//
//	go test -run '^$' -bench BenchmarkRegistrarScale -benchtime 1x ./registrar/server/
func BenchmarkRegistrarScale(b *testing.B) {
	const (
		names    = 100_000
		serial   = 500
		parallel = 1000
		clients  = 50
		watchers = 1000
	)
	data := filepath.Join(b.TempDir(), "servers.json")
	apitest.WriteData(b, data, names)
	reg := startRegistrarTB(b, regOptions{data: data})
	if n := reg.Store.Current().Len(); n != names {
		b.Fatalf("loaded %d names, want %d", n, names)
	}
	client := load.NewClient(watchers)
	defer client.CloseIdleConnections()
	var ack1, ack50, woken []time.Duration
	var deltaBytes, targetDeltaBytes int
	b.ResetTimer()
	for iter := range b.N {
		// One client: each registration changes an existing name's target.
		for i := range serial {
			start := time.Now()
			res := register(b, reg.URL, apitest.ScaleName(i*97%names), fmt.Sprintf("10.200.%d.%d:9000", iter%250, i%250+1), "scale")
			ack1 = append(ack1, time.Since(start))
			if !*res.Changed {
				b.Fatal("a registration changed nothing")
			}
		}
		// 50 clients.
		sent, lat := make([]time.Time, parallel), make([]time.Duration, parallel)
		res, err := load.Run(load.Options{
			Concurrency: clients, Duration: 2 * time.Minute, MaxRequests: parallel, Client: client,
			Request: func(i int) (*http.Request, error) {
				sent[i] = time.Now()
				req, err := http.NewRequest("POST", reg.URL+"/api/servers/register", strings.NewReader(regBody(fmt.Sprintf("scale-new-%d-%d", iter, i), apitest.ScaleTarget(i), "scale")))
				if err == nil {
					req.Header.Set("Content-Type", "application/json")
				}
				return req, err
			},
			Check: func(i int, resp *http.Response, body []byte) error {
				lat[i] = time.Since(sent[i])
				if resp.StatusCode != 200 {
					return fmt.Errorf("register: %d %s", resp.StatusCode, body)
				}
				return nil
			},
		})
		if err == nil {
			err = res.Err()
		}
		if err != nil {
			b.Fatal(err)
		}
		ack50 = append(ack50, lat...)

		// One name changed: what a proxy one revision behind downloads.
		rev, lineage := reg.Store.Current().Revision(), reg.Store.Lineage()
		name := fmt.Sprintf("scale-one-%d", iter)
		register(b, reg.URL, name, "10.201.0.1:8080", "scale")
		r := call(b, "GET", fmt.Sprintf("%s/v1/routes?v=2&after=%d&lineage=%s", reg.URL, rev, lineage), "")
		if r.Code != 200 || !strings.Contains(string(r.Body), `"kind":"delta"`) || !strings.Contains(string(r.Body), name) {
			b.Fatalf("one-name delta: %d %.300s", r.Code, r.Body)
		}
		deltaBytes = len(r.Body)

		// One target of a four-target name changed: what a version-3 proxy downloads.
		name = fmt.Sprintf("scale-set-%d", iter)
		r = call(b, "POST", reg.URL+"/api/servers/register", `{"host": "`+name+`", "serviceName": "scale", "targets": [
			{"address": "10.202.0.1:8080", "weight": 40}, {"address": "10.202.0.2:8080", "weight": 30},
			{"address": "10.202.0.3:8080", "weight": 20}, {"address": "10.202.0.4:8080", "weight": 10}]}`)
		if r.Code != 200 {
			b.Fatalf("register a set: %d %s", r.Code, r.Body)
		}
		rev = reg.Store.Current().Revision()
		if r = call(b, "PATCH", reg.URL+"/api/servers/"+name+"/targets/10.202.0.2:8080", `{"weight": 0}`); r.Code != 200 {
			b.Fatalf("patch one target: %d %s", r.Code, r.Body)
		}
		r = call(b, "GET", fmt.Sprintf("%s/v1/routes?v=3&after=%d&lineage=%s", reg.URL, rev, lineage), "")
		if r.Code != 200 || !strings.Contains(string(r.Body), `"kind":"delta"`) || !strings.Contains(string(r.Body), "10.202.0.2:8080/0,") {
			b.Fatalf("one-target delta: %d %.300s", r.Code, r.Body)
		}
		targetDeltaBytes = len(r.Body)

		// Fan-out to 1,000 watchers.
		rev = reg.Store.Current().Revision()
		name = fmt.Sprintf("scale-fan-%d", iter)
		at := make([]time.Time, watchers)
		errs := make(chan error, watchers)
		var wg sync.WaitGroup
		for w := range watchers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Get(fmt.Sprintf("%s/v1/routes?v=2&after=%d&lineage=%s&wait=30", reg.URL, rev, lineage))
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				at[w] = time.Now()
				if err != nil || resp.StatusCode != 200 || !strings.Contains(string(body), name) {
					errs <- fmt.Errorf("watcher %d: %d %v %.200s", w, resp.StatusCode, err, body)
				}
			}()
		}
		waitWatchers(b, reg, watchers)
		start := time.Now()
		register(b, reg.URL, name, "10.201.0.2:8080", "scale")
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		var last time.Time
		for _, t := range at {
			if t.After(last) {
				last = t
			}
		}
		woken = append(woken, last.Sub(start))
	}
	b.StopTimer()
	b.ReportMetric(load.Millis(load.Percentile(ack1, 50)), "ack1-p50-ms")
	b.ReportMetric(load.Millis(load.Percentile(ack1, 99)), "ack1-p99-ms")
	b.ReportMetric(load.Millis(load.Percentile(ack50, 50)), "ack50-p50-ms")
	b.ReportMetric(load.Millis(load.Percentile(ack50, 99)), "ack50-p99-ms")
	b.ReportMetric(float64(deltaBytes), "delta-bytes")
	b.ReportMetric(float64(targetDeltaBytes), "target-delta-bytes")
	b.ReportMetric(load.Millis(load.Percentile(woken, 100)), "fanout-all-woken-ms")
	if p99 := load.Percentile(ack1, 99); p99 > 10*time.Millisecond {
		b.Logf("target missed: 1-client ack p99 %v > 10 ms", p99)
	}
	if targetDeltaBytes > 1024 {
		b.Logf("target missed: a one-target change costs a proxy %d bytes > 1 KiB", targetDeltaBytes)
	}
	if w := load.Percentile(woken, 100); w > 100*time.Millisecond {
		b.Logf("target missed: last of %d watchers woken after %v > 100 ms", watchers, w)
	}
}
