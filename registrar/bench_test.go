package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testkit/apitest"
	"switchyard/internal/testkit/proc"
	"switchyard/internal/testkit/procfs"
)

// BenchmarkRegistrarStart1M measures the built registrar on a data file of 1,000,000
// names: start-up time (process start until it listens, the table
// loaded; proc allows 30 s), resident memory after start-up and after one full v2 table has been paged
// out, and the size of the data file. It checks the answer first: every name is in
// the paged table at one revision, and a registration is acknowledged. Run with
// -benchtime 1x:
//
//	make build && SWITCHYARD_BIN=$PWD/bin go test -run '^$' -bench BenchmarkRegistrarStart1M -benchtime 1x ./registrar/
func BenchmarkRegistrarStart1M(b *testing.B) {
	const names = 1_000_000
	data := filepath.Join(b.TempDir(), "servers.json")
	size := apitest.WriteData(b, data, names)
	var startup []time.Duration
	var rssStart, rssPaged float64
	b.ResetTimer()
	for range b.N {
		began := time.Now()
		p := proc.StartConfig(b, "registrar", proc.Config{
			Args:  []string{"-listen", "127.0.0.1:0", "-data", data},
			Clear: []string{"REGISTRAR_"},
		})
		startup = append(startup, time.Since(began))
		b.StopTimer()
		rssStart = procfs.RSSMiB(b, p.Pid())
		got := pageAll(b, p.URL())
		if got != names {
			b.Fatalf("the paged table holds %d names, want %d", got, names)
		}
		rssPaged = procfs.RSSMiB(b, p.Pid())
		register(b, p.URL(), "after-start", "10.9.9.9:80", "bench")
		if err := p.Stop(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	var sum time.Duration
	for _, d := range startup {
		sum += d
	}
	b.ReportMetric((sum / time.Duration(len(startup))).Seconds(), "startup-s")
	b.ReportMetric(rssStart, "rss-start-MiB")
	b.ReportMetric(rssPaged, "rss-paged-MiB")
	b.ReportMetric(float64(size)/(1<<20), "data-MiB")
}

// pageAll fetches the full v2 table page by page and returns how many names it holds,
// requiring one revision throughout.
func pageAll(b *testing.B, base string) int {
	b.Helper()
	url := base + "/v1/routes?v=2"
	n, pages := 0, 0
	var rev string
	for {
		r := call(b, "GET", url, "")
		if r.Code != http.StatusOK {
			b.Fatalf("page %d: %d %.300s", pages, r.Code, r.Body)
		}
		body := string(r.Body)
		n += strings.Count(body, `":"10.`)
		pages++
		i := strings.Index(body, `"revision":`)
		j := strings.Index(body[i:], ",")
		if rev == "" {
			rev = body[i+11 : i+j]
		} else if body[i+11:i+j] != rev {
			b.Fatalf("page %d is at revision %s, the first at %s", pages, body[i+11:i+j], rev)
		}
		k := strings.Index(body, `"next":"`)
		if k < 0 {
			return n
		}
		next := body[k+8 : k+8+strings.IndexByte(body[k+8:], '"')]
		url = fmt.Sprintf("%s/v1/routes?v=2&snapshot=%s&start=%s", base, rev, next)
	}
}
