package server

import (
	"net"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"switchyard/internal/testkit/apitest"
	"switchyard/registrar/store"
)

// testRegistrar is the real server (New) over a real data file in a temporary folder,
// served by httptest on 127.0.0.1.
type testRegistrar struct {
	URL     string
	Data    string
	Server  *Server
	Store   store.Store
	Metrics *Metrics
}

type regOptions struct {
	token      string
	proxyToken string
	allow      string // -allow-cidr
	data       string // data file; default <tmp>/data/servers.json

	history    int64 // -history; 0: the default
	pageBytes  int64 // -page-bytes; 0: the default
	maxServers int64 // -max-servers; 0: the default
	observe    func(SyncRequest)
	maxFull    int           // MaxFullAnswers; 0: the default
	writeFor   time.Duration // AnswerWriteTimeout; 0: the default
	// smallSends gives each accepted connection a 4 KiB send buffer, so that an
	// answer a client does not read fills it at once instead of the kernel's buffers.
	smallSends bool
}

func startRegistrar(t *testing.T, o regOptions) *testRegistrar { return startRegistrarTB(t, o) }

// startRegistrarB is startRegistrar for benchmarks.
func startRegistrarB(b *testing.B) *testRegistrar { return startRegistrarTB(b, regOptions{}) }

func startRegistrarTB(t testing.TB, o regOptions) *testRegistrar {
	t.Helper()
	if o.data == "" {
		o.data = filepath.Join(t.TempDir(), "data", "servers.json")
	}
	policy, err := PolicyFrom(o.allow, "", "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(t, Config{Token: o.token, ProxyToken: o.proxyToken, Policy: policy, History: o.history, PageBytes: o.pageBytes, MaxServers: o.maxServers,
		MaxFullAnswers: o.maxFull, AnswerWriteTimeout: o.writeFor}, o.data, WithSyncObserver(o.observe))
	if err != nil {
		t.Fatal(err)
	}
	return &testRegistrar{URL: serveWith(t, s, o.smallSends), Data: o.data, Server: s, Store: s.Store(), Metrics: s.metrics}
}

// serve serves s's handler with httptest on 127.0.0.1 until the test ends, and
// returns its URL. Cleanups registered before it run after it.
func serve(t testing.TB, s *Server) string { return serveWith(t, s, false) }

// serveWith is serve; smallSends gives each connection a 4 KiB send buffer.
func serveWith(t testing.TB, s *Server, smallSends bool) string {
	srv := httptest.NewUnstartedServer(s.Handler())
	if smallSends {
		srv.Listener = smallSendListener{srv.Listener}
	}
	srv.Start()
	t.Cleanup(func() {
		s.releaseWaiters()
		srv.Close()
	})
	return srv.URL
}

// smallSendListener gives each accepted TCP connection a 4 KiB send buffer.
type smallSendListener struct{ net.Listener }

func (l smallSendListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// newServer builds a server as the registrar command does: the embedded store at
// data, opened with StoreOptions, handed to New. The test's cleanup closes the
// server, then the store.
func newServer(t testing.TB, cfg Config, data string, opts ...Option) (*Server, error) {
	t.Helper()
	m := NewMetrics()
	st, err := store.Open(data, store.EmbeddedOptions{Options: StoreOptions(cfg, nil, m)})
	if err != nil {
		return nil, err
	}
	s, err := New(cfg, st, m, opts...)
	if err != nil {
		st.Close()
		return nil, err
	}
	t.Cleanup(func() {
		s.Close()
		st.Close()
	})
	return s, nil
}

// The shared HTTP helpers (apitest) under the names these tests use.
type (
	reply      = apitest.Reply
	routesBody = apitest.Routes
)

var (
	call     = apitest.Call
	register = apitest.Register
	regBody  = apitest.RegBody
)
