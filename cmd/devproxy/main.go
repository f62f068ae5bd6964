// Command devproxy serves an Envoy config (the repo's envoy.yaml by default) with the
// real filter.wasm on the wasmhost, so the filter and the routes serve real traffic
// without Envoy.
//
//	devproxy -listen 127.0.0.1:8080 -wasm bin/filter.wasm -registrar http://127.0.0.1:9000 \
//	         [-config envoy.yaml] [-workers N] [-upstream URL] [-cluster NAME=URL[,URL]]... \
//	         [-allow-cidr 127.0.0.0/8] \
//	         [-admin 127.0.0.1:9901] [-profile current|legacy]
//
// The file's listener address and cluster addresses are placeholders for production:
// -listen replaces the first, -registrar, -upstream and -cluster the others. A part of
// the file the dev proxy does not implement, or a module Envoy would refuse, makes it
// exit with status 1 and a message naming it.
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
	"strings"
	"sync/atomic"
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

// listFlag collects a flag given several times and/or as a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// clusterFlag collects -cluster NAME=URL[,URL].
type clusterFlag map[string][]string

func (c clusterFlag) String() string { return "" }
func (c clusterFlag) Set(v string) error {
	name, urls, ok := strings.Cut(v, "=")
	if !ok || name == "" || urls == "" {
		return errors.New("want NAME=URL[,URL...], e.g. frontend=http://127.0.0.1:3000")
	}
	var l listFlag
	l.Set(urls)
	c[name] = append(c[name], l...)
	return nil
}

func run() error {
	var registrars listFlag
	clusters := clusterFlag{}
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve HTTP on (replaces the listener address of the Envoy config)")
	admin := flag.String("admin", "127.0.0.1:9901", "admin address serving /stats and /ready (empty: off)")
	wasmPath := flag.String("wasm", "bin/filter.wasm", "the filter module")
	configPath := flag.String("config", "envoy.yaml", "the Envoy config to serve (the repo's envoy.yaml when run from the repo's root)")
	flag.Var(&registrars, "registrar", "registrar base URL, e.g. http://127.0.0.1:9000; several (repeated or comma-separated) make a cluster of replicas that requests fail over between (default http://127.0.0.1:9000)")
	upstream := flag.String("upstream", "", "base URL of every static cluster other than the registrar's not given by -cluster (empty: they answer 503)")
	flag.Var(clusters, "cluster", "NAME=URL[,URL]: the endpoints of a cluster of the Envoy config (repeatable)")
	allowCIDR := flag.String("allow-cidr", "", "comma-separated CIDR ranges /sys targets may be in, as the registrar's -allow-cidr: the only way to allow loopback, link-local, metadata, unspecified or multicast targets (e.g. 127.0.0.0/8 for targets on this machine)")
	workers := flag.Int("workers", runtime.NumCPU(), "router VMs, one per worker as in Envoy")
	profile := flag.String("profile", "current", "Envoy behaviour to reproduce: current (Envoy ≈1.38 and later: the full WASI stub set, poll_oneoff answers at once) or legacy (Envoy 1.33-1.37; docs/proxy-wasm-host.md, Profiles)")
	nodeID := flag.String("node-id", "", "the proxy's node id, as Envoy's --service-node: the filter names itself by it in its polls, so the registrar's /api/proxies lists it by this name (empty: unnamed, as Envoy without it)")
	nodeCluster := flag.String("node-cluster", "", "the proxy's node cluster, as Envoy's --service-cluster (empty: none)")
	registrarCA := flag.String("registrar-ca", "", "PEM CA certificates to trust for an https:// -registrar (empty: the system's)")
	registrarCert := flag.String("registrar-cert", "", "PEM client certificate for an https:// -registrar that requires one (-tls-client-ca), with -registrar-key")
	registrarKey := flag.String("registrar-key", "", "PEM private key of -registrar-cert")
	flag.Parse()
	if len(registrars) == 0 {
		registrars = listFlag{"http://127.0.0.1:9000"}
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	allow, err := devproxy.ParseAllowCIDRs(*allowCIDR)
	if err != nil {
		return err
	}
	bs, err := devproxy.LoadEnvoyConfig(*configPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w (run from the repo's root, or give -config PATH/envoy.yaml)", err)
		}
		return err
	}
	wasm, err := os.ReadFile(*wasmPath)
	if err != nil {
		return err
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

	regTLS, err := devproxy.RegistrarTLS(*registrarCA, *registrarCert, *registrarKey)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := devproxy.New(ctx, devproxy.Config{
		Wasm: wasm, Envoy: bs, Registrar: registrars, RegistrarTLS: regTLS, Upstream: *upstream, Clusters: clusters, AllowCIDR: allow,
		Workers: *workers, Profile: prof, Logger: log, HostLogOutput: os.Stderr,
		Node: wasmhost.Node{ID: *nodeID, Cluster: *nodeCluster},
	})
	if err != nil {
		return err
	}
	defer p.Close()

	ls := p.Listener()
	servers := []*http.Server{{Handler: p, ReadHeaderTimeout: ls.ReadHeaderTimeout, IdleTimeout: ls.IdleTimeout, MaxHeaderBytes: ls.MaxHeaderBytes}}
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
		} else if ls.MaxConnections > 0 {
			ln = &capListener{Listener: ln, max: int64(ls.MaxConnections)}
		}
		log.Info(what, "addr", ln.Addr().String(), "workers", *workers, "config", *configPath)
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

// capListener closes connections beyond max open at once, as Envoy's
// global_downstream_max_connections refuses them, rather than running out of fds.
type capListener struct {
	net.Listener
	max  int64
	open atomic.Int64
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			c.Close()
			continue
		}
		return &countedConn{Conn: c, l: l}, nil
	}
}

type countedConn struct {
	net.Conn
	l    *capListener
	once atomic.Bool
}

func (c *countedConn) Close() error {
	if c.once.CompareAndSwap(false, true) {
		c.l.open.Add(-1)
	}
	return c.Conn.Close()
}
