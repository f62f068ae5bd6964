package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/internal/contract"
	"switchyard/internal/testkit/envoycheck"
)

// Several targets per name through the real registrar, dev proxy and filter, the
// targets being loopback servers on several ports.

// putTargets registers name with a target set through PUT /api/servers/{host}; query
// is appended to the URL (e.g. "?allowNoActive=true").
func putTargets(t testing.TB, baseURL, name, query string, targets ...string) {
	t.Helper()
	write(t, "PUT", baseURL+"/api/servers/"+name+query, `{"serviceName":"e2e","targets":[`+strings.Join(targets, ",")+`]}`)
}

func target(addr string, weight int, state string) string {
	return fmt.Sprintf(`{"address":%q,"weight":%d,"state":%q}`, addr, weight, state)
}

// killable is a loopback upstream that can be stopped abruptly and started again on
// the same port.
type killable struct {
	t    testing.TB
	addr string
	mu   sync.Mutex
	srv  *http.Server
}

func startKillable(t testing.TB, name string) *killable {
	k := &killable{t: t, addr: "127.0.0.1:0"}
	k.start(name)
	t.Cleanup(k.kill)
	return k
}

func (k *killable) start(name string) {
	k.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger a moment after a kill
		if ln, err = net.Listen("tcp", k.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		k.t.Fatalf("listening on %s: %v", k.addr, err)
	}
	k.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })}
	go srv.Serve(ln)
	k.mu.Lock()
	k.srv = srv
	k.mu.Unlock()
}

// kill closes the listener and every connection at once, as a crashed process would.
func (k *killable) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.srv != nil {
		k.srv.Close()
		k.srv = nil
	}
}

func TestProxyWeightedTargets(t *testing.T) {
	reg := startRegistrar(t)
	px := startDevproxy(t, reg.url())
	a, b, c := upstream(t, "a"), upstream(t, "b"), upstream(t, "c")
	putTargets(t, reg.url(), "shop", "?wait=applied", target(a, 90, "active"), target(b, 10, "active"), target(c, 50, "draining"))
	waitBody(t, px.url(), "shop", func(body string) bool { return strings.HasPrefix(body, "a ") || strings.HasPrefix(body, "b ") })
	count := map[string]int{}
	const n = 10000
	client := &http.Client{}
	for i := 0; i < n; i++ {
		a := getWith(t, client, px.url()+"/sys/x", "X-Server-Name", "shop")
		if a.status != 200 {
			t.Fatalf("request %d: %d %s", i, a.status, a.body)
		}
		count[a.body[:1]]++
	}
	if count["c"] != 0 {
		t.Errorf("the draining target got %d requests", count["c"])
	}
	for name, want := range map[string]int{"a": 9000, "b": 1000} {
		if d := count[name] - want; d < -n/50 || d > n/50 {
			t.Errorf("%s got %d of %d requests, want %d ± 2 %%", name, count[name], n, want)
		}
	}
	// Every target draining: 503 no_active_target, once the registrar is told it means it.
	putTargets(t, reg.url(), "shop", "?wait=applied&allowNoActive=true", target(a, 90, "draining"), target(b, 0, "active"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := get(t, px.url()+"/sys/x", "X-Server-Name", "shop")
		if got.status == 503 && got.errorCode() == contract.CodeNoActiveTarget {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("all draining: %d %s, want 503 %s", got.status, got.body, contract.CodeNoActiveTarget)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A target killed abruptly costs at most max_fails failed requests per worker VM of
// the proxy (the dev proxy spreads one client's requests over its workers; Envoy
// keeps a connection on one worker), then none; once it is back, it gets traffic
// again after fail_timeout.
func TestProxyEjectsKilledTarget(t *testing.T) {
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) { ejectsKilledTarget(t, workers) })
	}
}

func ejectsKilledTarget(t *testing.T, workers int) {
	const maxFails = 1
	reg := startRegistrar(t)
	px := startDevproxy(t, reg.url(), "-workers", fmt.Sprint(workers), "-config",
		envoycheck.WriteRepoConfig(t, `"header": "x-server-name",`, `"header": "x-server-name", "max_fails": 1, "fail_timeout": 2,`))
	a := startKillable(t, "a")
	b := upstream(t, "b")
	putTargets(t, reg.url(), "shop", "?wait=applied", target(a.addr, 1, "active"), target(b, 1, "active"))
	waitBody(t, px.url(), "shop", func(body string) bool { return body == "a" })
	client := &http.Client{}
	a.kill()
	failed, seenB := 0, 0
	for i := 0; i < 200; i++ {
		got := getWith(t, client, px.url()+"/sys/x", "X-Server-Name", "shop")
		switch {
		case got.status == 503:
			failed++
			if i >= 50 {
				t.Fatalf("request %d failed (%s) long after the kill", i, got.body)
			}
		case got.status == 200 && strings.HasPrefix(got.body, "b "):
			seenB++
		default:
			t.Fatalf("request %d: %d %q", i, got.status, got.body)
		}
	}
	if failed == 0 || failed > maxFails*workers {
		t.Fatalf("%d requests failed after the kill, want 1 to max_fails × workers (%d)", failed, maxFails*workers)
	}
	a.start("a")
	start := time.Now()
	for {
		got := getWith(t, client, px.url()+"/sys/x", "X-Server-Name", "shop")
		if got.status == 200 && got.body == "a" {
			break
		}
		if got.status != 200 {
			t.Fatalf("after the restart: %d %q", got.status, got.body)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the restarted target got no traffic within 10 s (fail_timeout 2 s)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d failed requests after the kill; traffic back %v after the restart", failed, time.Since(start).Round(time.Millisecond))
}

// waitBody polls (bounded) until a request to name answers with a body ok accepts.
func waitBody(t testing.TB, proxyURL, name string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := get(t, proxyURL+"/sys/x", "X-Server-Name", name)
		if got.status == 200 && ok(got.body) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d %q", name, got.status, got.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
