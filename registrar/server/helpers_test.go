package server

import (
	"net/http/httptest"
	"path/filepath"
	"testing"

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
	token string
	allow string // -allow-cidr
	data  string // data file; default <tmp>/data/servers.json

	history    int64 // -history; 0: the default
	pageBytes  int64 // -page-bytes; 0: the default
	maxServers int64 // -max-servers; 0: the default
	observe    func(SyncRequest)
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
	s, err := newServer(t, Config{Token: o.token, Policy: policy, History: o.history, PageBytes: o.pageBytes, MaxServers: o.maxServers}, o.data, WithSyncObserver(o.observe))
	if err != nil {
		t.Fatal(err)
	}
	return &testRegistrar{URL: serve(t, s), Data: o.data, Server: s, Store: s.Store(), Metrics: s.metrics}
}

// serve serves s's handler with httptest on 127.0.0.1 until the test ends, and
// returns its URL. Cleanups registered before it run after it.
func serve(t testing.TB, s *Server) string {
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.releaseWaiters()
		srv.Close()
	})
	return srv.URL
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
