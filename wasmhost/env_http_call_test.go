package wasmhost

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testkit/wait"
)

// Synchronous refusals of proxy_http_call: BadArgument (2), no callback.
func TestHTTPCallBadArgument(t *testing.T) {
	h := newHost(t, Options{Clusters: map[string]string{"known": "http://127.0.0.1:1"}})
	vm := startProbe(t, h, PluginConfig{})
	cases := []struct{ name, path string }{
		{"unknown cluster", "/call?cluster=nope&authority=a&path=/x"},
		{"missing :authority", "/call?cluster=known&path=/x"},
		{"missing :path", "/call?cluster=known&authority=a"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustRequest(t, vm, tc.path)
			got := logLines(h, "http_call ")
			if len(got) != i+1 || got[i] != "http_call status=2 token=0" {
				t.Fatalf("got %q, want BadArgument (status=2) and no token", got)
			}
		})
	}
	if got := logLines(h, "http_response"); len(got) != 0 {
		t.Errorf("a refused call got a callback: %q", got)
	}
}

// A call goes over real HTTP to the cluster's address, with :authority as Host, and the
// answer reaches the root context; the response is readable only inside that callback.
func TestHTTPCallRoundTrip(t *testing.T) {
	seen := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		w.Header().Set("X-Reply", "1")
		w.Write([]byte("pong"))
	}))
	t.Cleanup(srv.Close)
	h := newHost(t, Options{})
	h.SetCluster("up", srv.URL)
	vm := startProbe(t, h, PluginConfig{})

	mustRequest(t, vm, "/call?cluster=up&authority=registrar&path=/ping&timeout=5000")
	if got := logLines(h, "http_call "); len(got) != 1 || got[0] != "http_call status=0 token=4" {
		t.Fatalf("dispatch: %q", got)
	}
	e := waitLog(t, h, "http_response")
	want := "body_size=4 status=200 body=pong body_status=0 code=0 msg="
	if !strings.HasPrefix(e.Message, "http_response root=1 token=4 headers=") || !strings.HasSuffix(e.Message, want) {
		t.Errorf("callback:\n got %q\nwant %q", e.Message, want)
	}
	r := <-seen
	if r.Host != "registrar" || r.URL.Path != "/ping" || r.Method != "GET" {
		t.Errorf("upstream saw %s %s Host=%s", r.Method, r.URL.Path, r.Host)
	}
	mustRequest(t, vm, "/readresp")
	if got := logLines(h, "readresp"); len(got) != 1 || got[0] != "readresp body_status=1 header_status=1" {
		t.Errorf("outside the callback the response must be NotFound (1): %q", got)
	}
}

// With a driven clock the timeout fires on Advance: the in-flight request is cancelled
// and the root context gets Envoy's 504 before Advance returns, exactly once.
func TestHTTPCallTimeoutByDrivenClock(t *testing.T) {
	arrived := make(chan struct{})
	cancelled := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	clock := NewManualClock(time.Unix(1_700_000_000, 0))
	h := newHost(t, Options{Clock: clock, Clusters: map[string]string{"slow": srv.URL}})
	vm := startProbe(t, h, PluginConfig{})

	mustRequest(t, vm, "/call?cluster=slow&authority=slow&path=/wait&timeout=500")
	select { // the request is in flight before the clock moves
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream never saw the request")
	}
	clock.Advance(499 * time.Millisecond)
	if got := logLines(h, "http_response"); len(got) != 0 {
		t.Fatalf("callback before the timeout: %q", got)
	}
	clock.Advance(time.Millisecond)
	got := logLines(h, "http_response")
	if len(got) != 1 || !strings.Contains(got[0], "status=504 body=upstream request timeout") {
		t.Fatalf("after the timeout: %q, want one 504 callback", got)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
	if got := logLines(h, "http_response"); len(got) != 1 {
		t.Errorf("%d callbacks, want exactly 1", len(got))
	}
}

// Transport failures: a reset mid-response is (root, token, 0, 0, 0) with status
// (11, "reset"); a refused connection is Envoy's local 503.
func TestHTTPCallFailures(t *testing.T) {
	reset := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		w.Write([]byte("partial"))
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(reset.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String()
	ln.Close()

	cases := []struct{ name, url, want string }{
		{"reset mid-body", reset.URL, "headers=0 body_size=0 status= body= body_status=1 code=11 msg=reset"},
		{"connection refused", closedURL, "status=503 body=upstream connect error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, Options{Clusters: map[string]string{"c": tc.url}})
			vm := startProbe(t, h, PluginConfig{})
			mustRequest(t, vm, "/call?cluster=c&authority=c&path=/&timeout=5000")
			if e := waitLog(t, h, "http_response"); !strings.Contains(e.Message, tc.want) {
				t.Fatalf("callback %q does not contain %q", e.Message, tc.want)
			}
		})
	}
}

// A timeout after the answer's headers arrived is a reset, not a 504: Envoy's router
// can no longer answer locally, so the guest gets (root, token, 0, 0, 0) and status
// (11, "reset").
func TestHTTPCallTimeoutAfterHeadersIsReset(t *testing.T) {
	headersSent := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		close(headersSent)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	clock := NewManualClock(time.Unix(1_700_000_000, 0))
	h := newHost(t, Options{Clock: clock, Clusters: map[string]string{"slow": srv.URL}})
	vm := startProbe(t, h, PluginConfig{})

	mustRequest(t, vm, "/call?cluster=slow&authority=slow&path=/body&timeout=500")
	select {
	case <-headersSent:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream never answered")
	}
	// The host's goroutine must have seen the headers before the clock moves.
	wait.Eventually(t, 5*time.Second, func() string {
		vm.mu.Lock()
		defer vm.mu.Unlock()
		for _, c := range vm.calls {
			if !c.answering.Load() {
				return "the answer's headers have not reached the host"
			}
		}
		return ""
	})
	clock.Advance(500 * time.Millisecond)
	got := logLines(h, "http_response")
	want := "headers=0 body_size=0 status= body= body_status=1 code=11 msg=reset"
	if len(got) != 1 || !strings.HasSuffix(got[0], want) {
		t.Fatalf("callbacks %q, want one ending %q", got, want)
	}
}

// An answer body over the limit (Envoy: 32 MiB, http.async_response_buffer_limit)
// fails the call like a reset; one at the limit is an answer.
func TestHTTPCallBodyLimit(t *testing.T) {
	if maxHTTPCallBody != 32<<20 {
		t.Fatalf("maxHTTPCallBody = %d, want Envoy's 32 MiB", maxHTTPCallBody)
	}
	const limit = 1024
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Write([]byte(strings.Repeat("x", n)))
	}))
	t.Cleanup(srv.Close)
	cases := []struct {
		n    int
		want string
	}{
		{limit, "body_size=1024 status=200 body=" + strings.Repeat("x", limit) + " body_status=0 code=0 msg="},
		{limit + 1, "headers=0 body_size=0 status= body= body_status=1 code=11 msg=reset"},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.n), func(t *testing.T) {
			h := newHost(t, Options{Clusters: map[string]string{"c": srv.URL}})
			h.httpCallBodyLimit = limit
			vm := startProbe(t, h, PluginConfig{})
			mustRequest(t, vm, "/call?cluster=c&authority=c&path=/?n="+strconv.Itoa(tc.n)+"&timeout=5000")
			if e := waitLog(t, h, "http_response"); !strings.HasSuffix(e.Message, tc.want) {
				t.Fatalf("callback %q, want it to end %q", e.Message, tc.want)
			}
		})
	}
}
