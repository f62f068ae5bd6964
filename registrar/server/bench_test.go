package server

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkRegister50Clients sends b.N registrations (distinct names) from 50
// concurrent clients over real HTTP to the real handler and data file; group commit
// lets one fsync'd replacement carry many of them. Reports registrations per second
// and writes per durable replacement.
func BenchmarkRegister50Clients(b *testing.B) {
	const clients = 50
	reg := startRegistrarB(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				body := regBody(fmt.Sprintf("bench-%d", i), fmt.Sprintf("10.%d.%d.%d", i/62500%250, i/250%250, i%250+1), "bench")
				resp, err := client.Post(reg.URL+"/api/servers/register", "application/json", strings.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "registrations/s")
	var m dtoCounter
	if c := m.readB(b, reg); c > 0 {
		b.ReportMetric(float64(b.N)/c, "writes/commit")
	}
}
