// Command devproxy runs the real filter.wasm on the wasmhost as an HTTP proxy, so the
// filter serves real traffic without Envoy (design.md, "Dev proxy").
//
//	devproxy -listen 127.0.0.1:8080 -wasm bin/filter.wasm -registrar http://127.0.0.1:9000 \
//	         [-config FILE] [-workers N] [-upstream URL] [-admin 127.0.0.1:9901] [-profile current|legacy]
//
// A module Envoy would refuse makes it exit with status 1 and the host's error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"switchyard/devproxy"
	"switchyard/wasmhost"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devproxy:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve HTTP on")
	admin := flag.String("admin", "127.0.0.1:9901", "admin address serving /stats and /ready (empty: off)")
	wasmPath := flag.String("wasm", "bin/filter.wasm", "the filter module")
	registrar := flag.String("registrar", "http://127.0.0.1:9000", "registrar base URL (the filter's registrar cluster, and /api/ and /v1/)")
	configPath := flag.String("config", "", "file with the filter's JSON plugin configuration (default: the filter's defaults)")
	workers := flag.Int("workers", runtime.NumCPU(), "router VMs, one per worker as in Envoy")
	upstream := flag.String("upstream", "", "base URL for paths that are neither routed nor the registrar's (empty: 404)")
	profile := flag.String("profile", "current", "Envoy behaviour to reproduce: current (cpp-host with #533) or legacy (Envoy 1.33-1.37)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	wasm, err := os.ReadFile(*wasmPath)
	if err != nil {
		return err
	}
	var pluginConfig []byte
	if *configPath != "" {
		if pluginConfig, err = os.ReadFile(*configPath); err != nil {
			return err
		}
	}
	var prof wasmhost.Profile
	switch *profile {
	case "current":
		prof = wasmhost.Current
	case "legacy":
		prof = wasmhost.Legacy
	default:
		return fmt.Errorf("-profile must be current or legacy, not %q", *profile)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := devproxy.New(ctx, devproxy.Config{
		Wasm: wasm, PluginConfig: pluginConfig, RegistrarURL: *registrar, UpstreamURL: *upstream,
		Workers: *workers, Profile: prof, Logger: log, HostLogOutput: os.Stderr,
	})
	if err != nil {
		return err
	}
	defer p.Close()

	servers := []*http.Server{{Handler: p, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}}
	addrs := []string{*listen}
	if *admin != "" {
		servers = append(servers, &http.Server{Handler: p.AdminHandler(), ReadHeaderTimeout: 10 * time.Second})
		addrs = append(addrs, *admin)
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		ln, err := net.Listen("tcp", addrs[i])
		if err != nil {
			return err
		}
		what := "listening"
		if i == 1 {
			what = "admin listening"
		}
		log.Info(what, "addr", ln.Addr().String(), "workers", *workers)
		go func() { errc <- srv.Serve(ln) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("shutdown", "err", err)
		}
	}
	return nil
}
