// Command registrar is the service a CMS registers servers with: it keeps the table
// of server names and targets in a durable data file, validates and authenticates
// every write, and serves the table to the proxy's filter through a long-poll
// (GET /v1/routes). See design.md, "Registrar", for the contract and -help for flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stderr))
}

// shutdownGrace bounds how long a shutdown waits for requests in flight.
const shutdownGrace = 10 * time.Second

// run is the whole program; it returns the exit code. It serves until ctx is done
// (SIGINT/SIGTERM), then stops accepting, answers waiting long-polls, lets writes in
// flight finish and returns 0.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "registrar:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	policy, err := policyFrom(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "registrar:", err)
		return 2
	}

	store, removed, err := OpenStore(cfg.Data)
	for _, f := range removed {
		log.Info("removed a stale temporary file left by an interrupted write", "file", f)
	}
	if err != nil {
		log.Error("cannot open the data file", "err", err)
		return 1
	}
	defer store.Close()
	warnStoredTargets(log, store.Snapshot(), policy)

	if cfg.Import != "" {
		rep, err := importSeed(store, cfg.Import, policy)
		if err != nil {
			log.Error("import failed", "err", err)
			return 1
		}
		log.Info("imported", "file", cfg.Import, "entries", rep.Entries, "changed", rep.Changed, "revision", rep.Revision, "data", cfg.Data)
		return 0
	}

	m := newMetrics()
	m.observeSnapshot(store.Snapshot())
	store.onCommit = m.observeCommit // set before any write can reach the writer

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Error("cannot listen; choose another -listen address or stop what uses it", "addr", cfg.Listen, "err", err)
		return 1
	}
	if cfg.Token == "" {
		log.Warn("no token configured: anyone who can reach this address can change routes; set -token-file or REGISTRAR_TOKEN", "addr", ln.Addr().String())
	}
	release := make(chan struct{})
	srv := newHTTPServer(newHandler(store, policy, cfg.Token, m, log, release), log)
	srv.RegisterOnShutdown(func() { close(release) })
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s := store.Snapshot()
	log.Info("listening", "addr", ln.Addr().String(), "data", cfg.Data, "revision", s.revision, "servers", len(s.servers), "auth", cfg.Token != "")

	select {
	case err := <-served:
		log.Error("server stopped", "err", err)
		return 1
	case <-ctx.Done():
	}
	log.Info("shutting down: no new connections, finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	code := 0
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("requests still running at the end of the grace period were cut", "err", err)
		code = 1
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		log.Error("server stopped", "err", err)
	}
	store.Close()
	log.Info("stopped", "revision", store.Snapshot().revision)
	return code
}

// warnStoredTargets flags stored targets the current policy would refuse (the
// -allow-cidr list may have narrowed since they were written). They are kept and
// served, since dropping routes at start would be worse; the operator decides.
func warnStoredTargets(log *slog.Logger, s *snapshot, p Policy) {
	for _, sv := range s.sorted {
		if err := checkAddress(sv.IPAddress, p); err != nil {
			log.Warn("a stored target would be refused by the current policy; update or delete it", "host", sv.Host, "err", err)
		}
	}
}
