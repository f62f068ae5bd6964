// Command registrar is the service a CMS registers servers with: it keeps the table
// of server names and targets in a durable store, validates and authenticates every
// write, and serves the table to the proxies' filter through a long-poll
// (GET /v1/routes). This is the composition root: it reads the flags (flags.go),
// opens the store (the embedded one at -data, or etcd), hands it to
// switchyard/registrar/server and runs it. See -help for flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"switchyard/registrar/server"
	"switchyard/registrar/store"
	"switchyard/registrar/store/etcdstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stderr))
}

// run is the whole program; it returns the exit code: 0 after a clean stop
// (SIGINT/SIGTERM) or a successful -import, 1 when it could not start or serve, 2 for
// a bad command line.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "registrar:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	m := server.NewMetrics()
	st, err := openStore(ctx, cfg, server.StoreOptions(cfg.server, log, m))
	if err != nil {
		log.Error("cannot open the data", "err", err)
		return 1
	}
	defer st.Close()
	srv, err := server.New(cfg.server, st, m, server.WithLogger(log))
	if err != nil {
		log.Error("cannot serve the data", "err", err)
		return 1
	}
	defer srv.Close()

	if cfg.Import != "" {
		rep, err := srv.Import(cfg.Import)
		if err != nil {
			log.Error("import failed", "err", err)
			return 1
		}
		log.Info("imported", append([]any{"file", cfg.Import, "entries", rep.Entries, "changed", rep.Changed, "revision", rep.Revision}, cfg.server.StoreAt...)...)
		return 0
	}

	ln, err := net.Listen("tcp", cfg.server.Listen)
	if err != nil {
		log.Error("cannot listen; choose another -listen address or stop what uses it", "addr", cfg.server.Listen, "err", err)
		return 1
	}
	// The store is open and the address bound (connections wait in its backlog until
	// Serve accepts them): ready for systemd's Type=notify.
	if err := notifyReady(getenv); err != nil {
		log.Warn("cannot tell systemd the registrar is ready; a Type=notify unit will time out", "err", err)
	}
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("server stopped", "err", err)
		return 1
	}
	return 0
}

// openStore opens the store cfg names: etcd when -etcd-endpoints is set, else the
// embedded one at -data; o holds what the server needs of either.
func openStore(ctx context.Context, cfg settings, o store.Options) (store.Store, error) {
	if cfg.UseEtcd {
		eo := cfg.Etcd
		eo.Options = o
		return etcdstore.Open(ctx, eo)
	}
	return store.Open(cfg.Data, store.EmbeddedOptions{Options: o, CompactAt: cfg.CompactBytes, Init: cfg.Init})
}
