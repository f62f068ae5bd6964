package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"switchyard/registrar/web"
)

// newHandler wires every route. /api/ and /v1/ need the token when one is set;
// /, /healthz and /metrics stay open (they show no targets). release is closed at
// shutdown to answer waiting long-polls.
func newHandler(store *Store, policy Policy, token string, m *metrics, log *slog.Logger, release <-chan struct{}) http.Handler {
	a := &api{store: store, policy: policy, log: log}
	auth := newBearer(token)
	page := web.Handler()
	mux := http.NewServeMux()
	mux.Handle("/api/servers/register", auth.wrap(http.HandlerFunc(a.register)))
	mux.Handle("/api/servers", auth.wrap(http.HandlerFunc(a.list)))
	mux.Handle("/api/servers/{host}", auth.wrap(http.HandlerFunc(a.server)))
	mux.Handle("/api/", auth.wrap(http.HandlerFunc(a.notFound)))
	mux.Handle("/v1/routes", auth.wrap(&routes{store: store, release: release, metrics: m}))
	mux.Handle("/v1/", auth.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeFailure(w, http.StatusNotFound, "no such endpoint "+r.URL.Path+"; the route table is at /v1/routes")
	})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		s := store.Snapshot()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]any{"status": "ok", "revision": s.revision, "servers": len(s.servers)})
	})
	mux.Handle("GET /metrics", m.handler())
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, r, http.MethodGet)
			return
		}
		page.ServeHTTP(w, r)
	}))
	return m.count(mux)
}

// newHTTPServer sets the timeouts: headers and bodies must arrive promptly, while
// answers may take as long as the longest long-poll (60 s) plus slack.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      maxWait + 15*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
