package main

import (
	"bufio"
	"fmt"
	"net"
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

// BenchmarkRegistrarSlowReaders measures the built registrar's resident memory while
// 200 clients ask for the full v2 table (100,000 names, about 4 MiB a page) and never
// read the answer, as a lineage change makes every proxy ask at once through stalled
// connections. Each client reads only its status line. Reported: resident memory at
// start, with the 200 connected, and after they close; how many were answered 200
// (the rest 503, at most -max-full-answers held at once). Run with -benchtime 1x:
//
//	make build && SWITCHYARD_BIN=$PWD/bin go test -run '^$' -bench BenchmarkRegistrarSlowReaders -benchtime 1x ./registrar/
func BenchmarkRegistrarSlowReaders(b *testing.B) {
	const names, clients = 100_000, 200
	data := filepath.Join(b.TempDir(), "servers.json")
	apitest.WriteData(b, data, names)
	for range b.N {
		p := proc.StartConfig(b, "registrar", proc.Config{
			Args:  []string{"-listen", "127.0.0.1:0", "-data", data},
			Clear: []string{"REGISTRAR_"},
		})
		rssStart := procfs.RSSMiB(b, p.Pid())
		addr := strings.TrimPrefix(p.URL(), "http://")
		conns := make([]net.Conn, 0, clients)
		ok := 0
		for range clients { // all ask at once, as after a lineage change
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
			fmt.Fprintf(c, "GET /v1/routes?v=2 HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		}
		readBy := time.Now().Add(time.Minute) // a registrar that encodes every answer is slow to start them
		for _, c := range conns {
			c.SetReadDeadline(readBy)
			line, err := bufio.NewReaderSize(c, 64).ReadString('\n')
			if err != nil {
				b.Fatalf("status line: %v", err)
			}
			if strings.Contains(line, " 200 ") {
				ok++
			}
		}
		time.Sleep(2 * time.Second)
		rssHeld := procfs.RSSMiB(b, p.Pid())
		for _, c := range conns {
			c.Close()
		}
		time.Sleep(2 * time.Second)
		rssAfter := procfs.RSSMiB(b, p.Pid())
		if pageAll(b, p.URL()) != names {
			b.Fatal("the paged table does not hold every name")
		}
		if err := p.Stop(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(rssStart, "rss-start-MiB")
		b.ReportMetric(rssHeld, "rss-200-stalled-MiB")
		b.ReportMetric(rssAfter, "rss-after-MiB")
		b.ReportMetric(float64(ok), "answered-200")
	}
}
