package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"switchyard/internal/testkit/apitest"
)

// TestPagesEncodedOnce: proxies asking for the same page of the same snapshot at
// once share one encoding, and the cache stays within its bound.
func TestPagesEncodedOnce(t *testing.T) {
	data := filepath.Join(t.TempDir(), "servers.json")
	apitest.WriteData(t, data, 3000)
	reg := startRegistrar(t, regOptions{data: data, pageBytes: 16 << 10})
	first := call(t, "GET", reg.URL+"/v1/routes?v=2", "")
	if first.Code != 200 {
		t.Fatalf("first page: %d %.200s", first.Code, first.Body)
	}
	h := reg.Server.routesHandler
	before := h.pages.encoded.Load()
	var wg sync.WaitGroup
	bodies := make([]string, 20)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := call(t, "GET", reg.URL+"/v1/routes?v=2", "")
			bodies[i] = string(r.Body)
		}()
	}
	wg.Wait()
	for i, b := range bodies {
		if b != string(first.Body) {
			t.Fatalf("answer %d differs from the first: %.200s", i, b)
		}
	}
	if n := h.pages.encoded.Load() - before; n != 0 {
		t.Errorf("20 requests for a page already sent encoded it %d more times, want 0", n)
	}
	// Every page of the table, twice: each is encoded once while it is held.
	for range 2 {
		url := reg.URL + "/v1/routes?v=2"
		for pages := 0; ; pages++ {
			r := call(t, "GET", url, "")
			body := string(r.Body)
			k := strings.Index(body, `"next":"`)
			if r.Code != 200 || pages > 100 {
				t.Fatalf("page %d: %d %.200s", pages, r.Code, body)
			}
			if k < 0 {
				break
			}
			next := body[k+8 : k+8+strings.IndexByte(body[k+8:], '"')]
			url = fmt.Sprintf("%s/v1/routes?v=2&snapshot=%d&start=%s", reg.URL, reg.Store.Current().Revision(), next)
		}
	}
	if held, max := h.pages.held(), pageCachePages*(16<<10); held > max || held == 0 {
		t.Errorf("the cache holds %d bytes, want some and at most %d", held, max)
	}
}

// TestFullAnswersBounded: clients that ask for the full table and never read hold at
// most MaxFullAnswers answers; one more is answered 503 with Retry-After; and each
// loses its connection when the answer write timeout passes, freeing its slot.
func TestFullAnswersBounded(t *testing.T) {
	data := filepath.Join(t.TempDir(), "servers.json")
	apitest.WriteData(t, data, 3000)
	const writeFor = 2 * time.Second
	reg := startRegistrar(t, regOptions{data: data, pageBytes: 64 << 10, maxFull: 2, writeFor: writeFor, smallSends: true})

	// Two readers that never read, with a 4 KiB receive buffer: the first page
	// (64 KiB) cannot leave the server.
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	addr := strings.TrimPrefix(reg.URL, "http://")
	var stuck []net.Conn
	for range 2 {
		c, err := dialer.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /v1/routes?v=2 HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		stuck = append(stuck, c)
	}
	began := time.Now()

	// A third asks while both are held: 503 with Retry-After.
	var r reply
	for deadline := time.Now().Add(writeFor / 2); ; {
		r = call(t, "GET", reg.URL+"/v1/routes?v=2", "")
		if r.Code == http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r.Code != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != "2" || !strings.Contains(string(r.Body), "as many full tables as it may at once (2)") {
		t.Fatalf("with two full tables held by readers that do not read, a third got %d Retry-After %q %.200s; want 503 with Retry-After 2",
			r.Code, r.Header.Get("Retry-After"), r.Body)
	}
	// A delta or a 304 is no full table: it is answered.
	lineage := reg.Store.Lineage()
	rev := reg.Store.Current().Revision()
	if r := call(t, "GET", fmt.Sprintf("%s/v1/routes?v=2&after=%d&lineage=%s", reg.URL, rev, lineage), ""); r.Code != http.StatusNotModified {
		t.Errorf("a poll at the current revision got %d while the full-table slots are taken, want 304", r.Code)
	}

	// After the write timeout the readers are cut off: reading then, each gets what
	// the buffers held, less than its answer, and then the end of the connection.
	time.Sleep(time.Until(began.Add(writeFor + 500*time.Millisecond)))
	for i, c := range stuck {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil || n >= resp.ContentLength {
			t.Errorf("reader %d took %d of %d bytes, err %v; want the connection cut before the end", i, n, resp.ContentLength, err)
		}
	}
	// The slots are free again.
	var ok reply
	for deadline := time.Now().Add(5 * time.Second); ; {
		ok = call(t, "GET", reg.URL+"/v1/routes?v=2", "")
		if ok.Code == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok.Code != 200 {
		t.Errorf("after the readers were cut, a full table got %d, want 200", ok.Code)
	}
}
