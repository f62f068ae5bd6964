package devproxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"switchyard/internal/load"
	"switchyard/internal/testbin"
)

// In-process benchmarks of the dev proxy, for profiling its own cost per request (issue
// #7): the real filter.wasm on the real host, the real registrar binary feeding the
// table, real HTTP on loopback. Unlike e2e's BenchmarkDevproxyThroughput (the built
// binary, measured from outside), these run the proxy in the test process, so
// -cpuprofile and -memprofile show where its time and garbage go:
//
//	go test -run '^$' -bench 'BenchmarkServe' -benchmem -cpuprofile cpu.out ./e2e/devproxy/
//
// BenchmarkServeRouted and BenchmarkServeBypass send the same GET to the same upstream,
// through the filter and around it; the difference between them is the routed path's
// cost. Figures include the client's and the upstream's work, which is alike for both.

// benchClients is the number of concurrent keep-alive clients, as in the e2e benchmark.
const benchClients = 32

type benchSetup struct {
	proxy  *httptest.Server
	client *http.Client
	stop   func()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchEnv != nil {
		benchEnv.stop()
	}
	os.Exit(code)
}

var benchEnv *benchSetup

// setupBench starts the registrar, the upstream and the proxy once per test process,
// registers one name and waits until it routes.
func setupBench(b *testing.B) *benchSetup {
	b.Helper()
	if benchEnv != nil {
		return benchEnv
	}
	// Whatever has started is stopped again if the set-up fails half-way.
	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	done := false
	defer func() {
		if !done {
			stopAll()
		}
	}()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "alpha "+r.Method+" "+r.URL.Path+"\n")
	}))
	stops = append(stops, up.Close)
	regURL, stopReg := startRegistrar(b)
	stops = append(stops, stopReg)
	register(b, regURL, "bench", up.Listener.Addr().String())
	p, err := New(context.Background(), Config{
		Wasm: testbin.Read(b, "filter.wasm"), RegistrarURL: regURL, UpstreamURL: up.URL, Workers: 2,
	})
	if err != nil {
		b.Fatal(err)
	}
	stops = append(stops, func() { p.Close() })
	srv := httptest.NewServer(p)
	stops = append(stops, srv.Close)
	env := &benchSetup{proxy: srv, client: load.NewClient(benchClients), stop: stopAll}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := env.get("/sys/bench")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the name never routed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Every benchmark of the run shares the set-up; TestMain tears it down.
	done = true
	benchEnv = env
	return env
}

// get sends one GET for path naming "bench" and checks that it reached the upstream.
func (e *benchSetup) get(path string) error {
	req, _ := http.NewRequest("GET", e.proxy.URL+path, nil)
	req.Header.Set("X-Server-Name", "bench")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "bench/1.0")
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if want := "alpha GET " + path + "\n"; resp.StatusCode != 200 || string(body) != want {
		return fmt.Errorf("GET %s: %d %q, want 200 %q", path, resp.StatusCode, body, want)
	}
	return nil
}

func benchServe(b *testing.B, path string) {
	e := setupBench(b)
	b.SetParallelism(max(1, benchClients/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := e.get(path); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkServeRouted(b *testing.B) { benchServe(b, "/sys/bench") }
func BenchmarkServeBypass(b *testing.B) { benchServe(b, "/bypass/bench") }

var listenAddr = regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)

// startRegistrar runs the real registrar on a free port with its data in a temp dir.
func startRegistrar(b *testing.B) (string, func()) {
	b.Helper()
	cmd := exec.Command(testbin.Path(b, "registrar"), "-listen", "127.0.0.1:0",
		"-data", filepath.Join(b.TempDir(), "servers.json"), "-allow-cidr", "127.0.0.0/8")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listenAddr.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	select {
	case addr := <-found:
		return "http://" + addr, stop
	case <-time.After(30 * time.Second):
		stop()
		b.Fatal("the registrar did not report a listening address within 30 s")
	}
	return "", nil
}

func register(b *testing.B, regURL, name, addr string) {
	b.Helper()
	body := fmt.Sprintf(`{"host":%q,"ipAddress":%q,"serviceName":"bench"}`, name, addr)
	resp, err := http.Post(regURL+"/api/servers/register", "application/json", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(resp.Body)
		b.Fatalf("registering %s: %d %s", name, resp.StatusCode, msg)
	}
}
