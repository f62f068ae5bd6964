// Package server is the registrar's HTTP side: the /api/ writes and reads, the
// /v1/routes sync the proxies poll, /healthz, /metrics and the page, over a
// store.Store it is handed. New builds it from a Config and an open store; the
// registrar command (which reads the flags and opens the store) and the tests share
// that one constructor.
package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"switchyard/registrar/guard"
	"switchyard/registrar/store"
	"switchyard/registrar/web"

	"github.com/prometheus/client_golang/prometheus"
)

// Option adjusts what New builds.
type Option func(*options)

type options struct {
	log     *slog.Logger
	observe func(SyncRequest)
}

// WithSyncObserver calls fn for every version-2 /v1/routes request, with who asked
// (proxy, cluster, version) and where its table stood. fn runs on the request's
// goroutine and must return quickly.
func WithSyncObserver(fn func(SyncRequest)) Option { return func(o *options) { o.observe = fn } }

// WithLogger sets the logger (audit lines, failures, start-up reports). Default:
// discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// Server is one registrar: its store, policy, token and handler.
type Server struct {
	cfg      Config
	store    store.Store
	metrics  *Metrics
	log      *slog.Logger
	release  chan struct{}     // closed by Close: waiting long-polls answer at once
	observe  func(SyncRequest) // WithSyncObserver's
	health   writeHealth
	handler  http.Handler
	released sync.Once
	proxies  *proxyRegistry
	// routesHandler serves /v1/routes (its page cache and slots are read by tests).
	routesHandler *routes
	stop          chan struct{} // closed by Close: stops following the store's revisions
	stopped       sync.Once
	checks        *checker
	// endChecks stops the active health checks (Close).
	endChecks context.CancelFunc
}

// New checks cfg and builds the handler over st, which was opened with
// StoreOptions(cfg, log, m) so that its commits feed m, the metrics /metrics serves.
// The caller keeps st: Close does not close it. New does not listen; see Serve and
// Handler.
func New(cfg Config, st store.Store, m *Metrics, opts ...Option) (*Server, error) {
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, f := range opts {
		f(&o)
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	g, _ := guardOptions(cfg)
	cfg.PageBytes = cmp.Or(cfg.PageBytes, DefaultPageBytes)
	s := &Server{cfg: cfg, store: st, metrics: m, log: o.log, release: make(chan struct{}), observe: o.observe}
	s.metrics.observeStore(s.store)
	if c, ok := s.store.(interface{ Collectors() []prometheus.Collector }); ok {
		s.metrics.reg.MustRegister(c.Collectors()...) // the etcd store's own (reachable, invalid keys)
	}
	s.proxies = newProxyRegistry(int(cfg.MaxProxies), 0, nil)
	host, _ := os.Hostname()
	s.proxies.setReplica(cmp.Or(cfg.ReplicaName, cfg.Listen, host, "registrar"))
	s.metrics.observeProxies(s.proxies, s.store)
	s.stop = make(chan struct{})
	go s.proxies.followRevisions(s.store, s.stop)
	var lead leader = soleLeader{}
	if el, ok := s.store.(electing); ok {
		lead = electedLeader{el, s.proxies.replicaName}
	}
	s.checks = newChecker(s.store, s.cfg.Policy, s.log, lead, s.proxies.replicaName, s.metrics.reg)
	var cctx context.Context
	cctx, s.endChecks = context.WithCancel(context.Background())
	go s.checks.run(cctx)
	s.handler = s.newHandler(g)
	return s, nil
}

// Handler serves every route. /api/ and /v1/ need the token when one is set;
// /, /healthz and /metrics stay open (they show no targets). Every request passes
// the browser guards first (package guard, guardOptions).
func (s *Server) Handler() http.Handler { return s.handler }

// Store is the store the server serves; writes made on it directly (tests, tools)
// are served like writes through the API, without the API's checks.
func (s *Server) Store() store.Store { return s.store }

// Close answers waiting long-polls at once (304), stops following the store's
// revisions and stops the active health checks (giving up their leadership at once,
// so another replica takes over without waiting for the election's lease); the store
// stays open (its opener closes it, after Close).
func (s *Server) Close() error {
	s.releaseWaiters()
	s.stopped.Do(func() {
		close(s.stop)
		s.endChecks()
		<-s.checks.done
	})
	return nil
}

func (s *Server) releaseWaiters() { s.released.Do(func() { close(s.release) }) }

// shutdownGrace bounds how long a shutdown waits for requests in flight.
const shutdownGrace = 10 * time.Second

// Serve answers on ln until ctx is done, then stops accepting, answers waiting
// long-polls, lets requests in flight finish (up to 10 s) and closes the server. It
// logs "listening" with the address once it accepts.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.cfg.Token == "" {
		s.log.Warn("no token configured: anyone who can reach this address can change routes; set -token-file or REGISTRAR_TOKEN", "addr", ln.Addr().String())
	}
	ln, err := s.cfg.listener(ln, s.log)
	if err != nil {
		return err
	}
	srv := newHTTPServer(s.handler, s.log)
	srv.RegisterOnShutdown(s.releaseWaiters)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if s.cfg.ReplicaName == "" {
		s.proxies.setReplica(ln.Addr().String()) // the address it really listens on (port 0 resolved)
	}
	t := s.store.Current()
	s.log.Info("listening", append(append([]any{"addr", ln.Addr().String()}, s.cfg.StoreAt...), "revision", t.Revision(), "servers", t.Len(), "auth", s.cfg.Token != "",
		"proxy_token", s.cfg.ProxyToken != "", "tls", s.cfg.TLSCert != "", "client_certs", s.cfg.TLSClientCA != "")...)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down: no new connections, finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	shutErr := srv.Shutdown(sctx)
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("server stopped", "err", err)
	}
	s.log.Info("stopped", "revision", s.store.Current().Revision())
	if shutErr != nil {
		return errors.Join(errors.New("requests still running at the end of the grace period were cut"), shutErr)
	}
	return nil
}

func (s *Server) newHandler(g guard.Options) http.Handler {
	a := &api{store: s.store, policy: s.cfg.Policy, log: s.log, health: &s.health, maxServers: cmp.Or(s.cfg.MaxServers, DefaultMaxServers), proxies: s.proxies}
	auth := newBearer(s.cfg.Token, "the registrar's token")
	// The proxies' credential: the proxy token when one is set (and then only it: the
	// CMS's token does not make a poll, nor the proxy token a write), else the token.
	// With -tls-client-ca a poll must also come with a client certificate it signed.
	proxyAuth := auth
	if s.cfg.ProxyToken != "" {
		proxyAuth = newBearer(s.cfg.ProxyToken, "the registrar's proxy token (the filter's registrar.token)")
	}
	v1 := func(h http.Handler) http.Handler { return proxyAuth.wrap(s.requireClientCert(h)) }
	page := web.Handler()
	mux := http.NewServeMux()
	mux.Handle("/api/servers/register", auth.wrap(http.HandlerFunc(a.register)))
	mux.Handle("/api/servers", auth.wrap(http.HandlerFunc(a.list)))
	mux.Handle("/api/servers/{host}", auth.wrap(http.HandlerFunc(a.server)))
	mux.Handle("/api/servers/{host}/targets", auth.wrap(http.HandlerFunc(a.targets)))
	mux.Handle("/api/servers/{host}/targets/{address}", auth.wrap(http.HandlerFunc(a.target)))
	mux.Handle("/api/proxies", auth.wrap(http.HandlerFunc(a.listProxies)))
	mux.Handle("/api/export", auth.wrap(http.HandlerFunc(a.export)))
	mux.Handle("/api/import", auth.wrap(http.HandlerFunc(a.importTable)))
	mux.Handle("/api/", auth.wrap(http.HandlerFunc(a.notFound)))
	s.routesHandler = s.routes()
	mux.Handle("/v1/routes", v1(s.routesHandler))
	mux.Handle("/v1/", v1(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeFailure(w, http.StatusNotFound, "no such endpoint "+r.URL.Path+"; the route table is at /v1/routes")
	})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		t := s.store.Current()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		body := map[string]any{"status": "ok", "revision": t.Revision(), "servers": t.Len()}
		if f := s.health.failing(); f != nil {
			body["status"], body["reason"], body["since"] = "failing", f.reason, f.since
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(body)
	})
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, r, http.MethodGet)
			return
		}
		page.ServeHTTP(w, r)
	}))
	return s.metrics.count(guard.Wrap(mux, g))
}

// routes builds the /v1/routes handler with the full-table bounds (pagecache.go).
func (s *Server) routes() *routes {
	return &routes{store: s.store, release: s.release, metrics: s.metrics, pageBytes: int(s.cfg.PageBytes), observe: s.observeSync, log: s.log,
		pages:    newPageCache(pageCachePages * int(s.cfg.PageBytes)),
		full:     make(fullSlots, cmp.Or(s.cfg.MaxFullAnswers, DefaultMaxFullAnswers)),
		writeFor: cmp.Or(s.cfg.AnswerWriteTimeout, DefaultAnswerWriteTimeout)}
}

// newHTTPServer sets the timeouts: headers and bodies must arrive promptly, while
// answers may take as long as the longest long-poll (60 s) plus slack. An idle
// connection is closed after 30 s, so clients that hold connections open without
// using them (a 401 answer closes its connection at once) cannot use up the file
// descriptors; proxies poll back to back, so their connections are rarely idle.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      maxWait + 15*time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// writeHealth remembers a failed write until a write succeeds again, for /healthz.
type writeHealth struct {
	last atomic.Pointer[saveError]
}

type saveError struct {
	reason string
	since  time.Time
}

func (h *writeHealth) failing() *saveError { return h.last.Load() }

// observe records the result of a write that reached the store.
func (h *writeHealth) observe(err error) {
	switch {
	case err == nil:
		h.last.Store(nil)
	case errors.Is(err, store.ErrNotSaved):
		if h.last.Load() == nil {
			h.last.Store(&saveError{reason: "writes fail: " + saveFailure(err), since: time.Now().UTC()})
		}
	}
}

// saveFailure says why data could not be saved without naming any path (the cause
// the operating system gave, e.g. "no space left on device").
func saveFailure(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "the data could not be saved (" + pe.Op + ": " + pe.Err.Error() + ")"
	}
	return "the data could not be saved"
}

// StoreOptions are the settings the store a server built from cfg serves must be
// opened with (the caller adds each store's own): log, the write rules for loaded
// entries, cfg's history and table limit, and m's commit observer.
func StoreOptions(cfg Config, log *slog.Logger, m *Metrics) store.Options {
	return store.Options{Log: log, OnCommit: m.observeCommit, EntryCheck: checkLoaded,
		TargetCheck: func(sv store.Server) error { return checkStoredTargets(sv, cfg.Policy) },
		History:     int(cfg.History), MaxServers: int(cmp.Or(cfg.MaxServers, DefaultMaxServers))}
}

// checkLoaded applies the write rules the store does not know (reserved names,
// serviceName) to a server loaded from the data: data a write could not have made is
// refused at start rather than served.
func checkLoaded(sv store.Server) error {
	if err := checkServerName(sv.Name); err != nil {
		return err
	}
	return checkServiceName(sv.Service)
}

// checkStoredTargets applies the target policy to every target of a stored server
// (the store's TargetCheck): data that reached the store another way than a checked
// write is held to the rules a write is.
func checkStoredTargets(sv store.Server, p Policy) error {
	for i, t := range sv.TargetList() {
		field := "ipAddress"
		if sv.Targets != nil {
			field = "targets[" + strconv.Itoa(i) + "].address"
		}
		if err := checkAddress(t.Address, p, field); err != nil {
			return err
		}
	}
	return nil
}

// observeSync records a version-2 poll in the proxy registry, then tells the
// WithSyncObserver function.
func (s *Server) observeSync(req SyncRequest) {
	s.proxies.report(req)
	if s.observe != nil {
		s.observe(req)
	}
}
