// Package devproxy is the Envoy stand-in for development and tests: it serves an Envoy
// bootstrap (the project's envoy.yaml) with the real filter.wasm on the wasmhost, the
// way Envoy does (one `sync` VM for the process, one `router` VM per worker, all on one
// vm_id; without the bootstrap wasm service, router VMs only, which then keep the
// table themselves). It reads the file's listener settings, its routes in order, each route's
// CORS policy, header removal, upgrade configs and timeouts, the wasm filter's
// settings and the clusters, and refuses at start, by name, any part of the file it
// does not implement (features.go, site.go). Cluster addresses come from the caller,
// not the file, so the same file runs in production and on loopback. docs/devproxy.md
// says what is read from the file and how targets are checked.
//
// What it promises, beyond Envoy's behaviour that the host reproduces:
//   - a request is never left hanging on a broken VM: a router VM that traps answers
//     503 for the request that found it dead and is replaced in the background;
//   - the sync VM is replaced the same way, so the table keeps following the registrar;
//   - local replies from the filter go out as the filter wrote them;
//   - a target's address never reaches the client: errors name the server or cluster.
package devproxy

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"

	"switchyard/internal/pluginconfig"
	"switchyard/wasmhost"
)

// Config is what New needs. Wasm and Envoy are required.
type Config struct {
	Wasm  []byte                 // the filter module
	Envoy *bootstrapv3.Bootstrap // what to serve (LoadEnvoyConfig)
	// Registrar lists the base URLs of the registrar cluster's endpoints (the cluster
	// the plugin configuration's registrar.cluster names), e.g. http://127.0.0.1:9000;
	// with several, a request goes to a healthy one and fails over on a refused
	// connection.
	Registrar []string
	// RegistrarTLS is the TLS client setting for https:// registrar URLs: the CAs to
	// trust (RootCAs) and a client certificate for a registrar with -tls-client-ca.
	// nil: the system's CAs, no client certificate.
	RegistrarTLS *tls.Config
	// Upstream is the base URL of every other static cluster not named in Clusters.
	Upstream string
	// Clusters gives the endpoints of named clusters; it overrides Registrar and
	// Upstream. A static cluster left without an address answers 503.
	Clusters map[string][]string
	// AllowCIDR are the ranges the dynamic forward proxy may connect to beyond the
	// default policy (TargetPolicy): loopback targets need 127.0.0.0/8 here.
	AllowCIDR []netip.Prefix
	Workers   int              // router VMs; 0 means runtime.NumCPU()
	Profile   wasmhost.Profile // Envoy behaviour the host reproduces
	Clock     wasmhost.Clock   // nil: real time
	Logger    *slog.Logger     // nil: slog.Default()
	// HostLogOutput, when set, receives every log line the VMs write, Envoy-style.
	HostLogOutput io.Writer
	// Node is the proxy's node (Envoy's --service-node, --service-cluster): the filter
	// names itself by it in its polls. Empty, as Envoy without those flags.
	Node wasmhost.Node
}

// Proxy is an http.Handler. Close releases its VMs.
type Proxy struct {
	cfg        Config
	log        *slog.Logger
	site       *site
	plugin     pluginconfig.Config // the router's plugin configuration
	host       *wasmhost.Host
	module     *wasmhost.Module
	sync       *slot
	routers    []*slot
	next       atomic.Uint64
	clusters   *clusterTransport
	proxy      *httputil.ReverseProxy
	stopChecks context.CancelFunc
	closeOnce  sync.Once
	closed     chan struct{}
}

// New reads the Envoy config, loads the module and starts the sync VM and the router
// VMs. A part of the config the dev proxy does not implement is refused, named. Any
// refusal Envoy would make of the module (an import it does not link, no ABI marker,
// a trap or a false from on_configure while starting) is returned with the host's words.
func New(ctx context.Context, cfg Config) (*Proxy, error) {
	if cfg.Envoy == nil {
		return nil, errors.New("devproxy: no Envoy config given")
	}
	s, err := readSite(cfg.Envoy)
	if err != nil {
		return nil, fmt.Errorf("devproxy: %w", err)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.NumCPU()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger, site: s, closed: make(chan struct{})}
	if len(s.notes) > 0 {
		p.log.Info("accepted from the Envoy config without reproducing it", "settings", strings.Join(s.notes, "; "))
	}
	if s.wasm != nil {
		if len(cfg.Wasm) == 0 {
			return nil, errors.New("devproxy: the Envoy config runs a wasm filter, but no wasm module was given")
		}
		// The filter's own parser: a configuration the filter would refuse is refused
		// here, with the same words, before any VM starts.
		if p.plugin, err = pluginconfig.Parse(s.wasm.routerConfig); err != nil {
			return nil, fmt.Errorf("devproxy: plugin configuration: %w", err)
		}
		if s.wasm.hasSync {
			if _, err := pluginconfig.Parse(s.wasm.syncConfig); err != nil {
				return nil, fmt.Errorf("devproxy: plugin configuration of the sync: %w", err)
			}
		}
	}
	addrs, err := p.clusterAddresses()
	if err != nil {
		return nil, err
	}
	if p.clusters, err = newClusterTransport(s.clusters, addrs, map[string]*tls.Config{p.registrarCluster(): p.cfg.RegistrarTLS}); err != nil {
		return nil, err
	}
	checkCtx, stop := context.WithCancel(context.Background())
	p.stopChecks = stop
	p.clusters.healthChecks(checkCtx, s.clusters, p.log)

	hostClusters := map[string]string{}
	for name := range p.clusters.clusters {
		hostClusters[name] = "http://" + name // the cluster transport picks the endpoint
	}
	p.host = wasmhost.New(wasmhost.Options{
		Profile:   cfg.Profile,
		Clock:     cfg.Clock,
		Clusters:  hostClusters,
		Transport: p.clusters,
		LogOutput: cfg.HostLogOutput,
		Node:      cfg.Node,
	})
	if s.wasm != nil {
		if err := p.startVMs(ctx); err != nil {
			p.Close()
			return nil, err
		}
	}
	p.proxy = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		ModifyResponse: p.modifyResponse,
		Transport:      &routeTransport{clusters: p.clusters, dfp: p.newDFPTransport(), upgrades: p.newUpgradeTransport()},
		ErrorHandler:   p.upstreamError,
		BufferPool:     copyBuffers,
	}
	return p, nil
}

// registrarCluster is the cluster the filter polls ("" without a filter).
func (p *Proxy) registrarCluster() string {
	if regCluster := p.plugin.Registrar.Cluster; regCluster != "" || p.site.wasm == nil {
		return regCluster
	}
	return pluginconfig.Default().Registrar.Cluster
}

// clusterAddresses decides each static cluster's endpoints from Config.
func (p *Proxy) clusterAddresses() (map[string][]string, error) {
	regCluster := p.registrarCluster()
	out := map[string][]string{}
	for name, spec := range p.site.clusters {
		if spec.dfp {
			continue
		}
		switch {
		case len(p.cfg.Clusters[name]) > 0:
			out[name] = p.cfg.Clusters[name]
		case name == regCluster && len(p.cfg.Registrar) > 0:
			out[name] = p.cfg.Registrar
		case name != regCluster && p.cfg.Upstream != "":
			out[name] = []string{p.cfg.Upstream}
		}
	}
	for name := range p.cfg.Clusters {
		if _, ok := p.site.clusters[name]; !ok {
			return nil, fmt.Errorf("devproxy: -cluster %s: the Envoy config has no cluster of that name", name)
		}
	}
	if regCluster != "" && len(out[regCluster]) == 0 {
		return nil, fmt.Errorf("devproxy: no address for the registrar cluster %q; give -registrar", regCluster)
	}
	return out, nil
}

func (p *Proxy) startVMs(ctx context.Context) error {
	w := p.site.wasm
	var err error
	p.module, err = p.host.Load(ctx, p.cfg.Wasm)
	if err != nil {
		return err
	}
	plugin := func(name, root string, conf []byte) wasmhost.PluginConfig {
		return wasmhost.PluginConfig{Name: name, RootID: root, VMID: w.vmID, Configuration: conf}
	}
	if w.hasSync {
		if p.sync, err = p.newSlot(ctx, "sync", plugin(w.syncPluginName, w.syncRoot, w.syncConfig)); err != nil {
			return err
		}
	} else {
		p.log.Info("no envoy.bootstrap.wasm service in the Envoy config: the filter runs router-only (one router VM polls the registrar, elected by a lease)")
	}
	if p.site.hcm.wasmFilter == "" {
		return nil
	}
	for i := 0; i < p.cfg.Workers; i++ {
		s, err := p.newSlot(ctx, fmt.Sprintf("router-%d", i), plugin(w.routerPluginName, w.routerRoot, w.routerConfig))
		if err != nil {
			return err
		}
		p.routers = append(p.routers, s)
	}
	return nil
}

// copyBuffers lends the reverse proxy the buffers it copies bodies through. Without
// it each response allocates (and clears) a fresh 32 KiB buffer; BenchmarkServe's
// -memprofile shows what is left.
var copyBuffers = &bufferPool{}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// Close stops every VM, the health checks and the host. In-flight requests on a
// closed VM get 503.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		close(p.closed)
		if p.stopChecks != nil {
			p.stopChecks()
		}
		if p.sync != nil {
			p.sync.close()
		}
		for _, s := range p.routers {
			s.close()
		}
		if p.host != nil {
			p.host.Close()
		}
	})
	return nil
}

// Host is the wasmhost the VMs run on (metrics, logs, shared data).
func (p *Proxy) Host() *wasmhost.Host { return p.host }

// Ready reports whether the sync VM and every router VM are alive.
func (p *Proxy) Ready() bool {
	if p.sync != nil && p.sync.current() == nil {
		return false
	}
	for _, s := range p.routers {
		if s.current() == nil {
			return false
		}
	}
	return true
}

// ListenerSettings are the HTTP server limits the Envoy config sets for its listener;
// the command applies them to its http.Server.
type ListenerSettings struct {
	ReadHeaderTimeout time.Duration // request_headers_timeout (0: none)
	IdleTimeout       time.Duration // common_http_protocol_options.idle_timeout
	MaxHeaderBytes    int           // max_request_headers_kb
	MaxConnections    int           // the overload manager's downstream connection cap (0: none)
}

// Listener returns the listener settings of the Envoy config.
func (p *Proxy) Listener() ListenerSettings {
	h := p.site.hcm
	return ListenerSettings{
		ReadHeaderTimeout: h.requestHeadersTimeout,
		IdleTimeout:       h.connectionIdleTimeout,
		MaxHeaderBytes:    h.maxHeaderBytes,
		MaxConnections:    p.site.maxConnections,
	}
}

// writeJSON answers the way the filter's local replies do, for the proxy's own errors.
func writeJSON(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(jsonBody(code, msg))
}

// jsonBody is the body of the proxy's own error answers.
func jsonBody(code, msg string) []byte {
	b, _ := json.Marshal(map[string]string{"error": code, "message": msg})
	return append(b, '\n')
}

// errRouteTimeout ends a request whose route timeout passed.
var errRouteTimeout = errors.New("route timeout")

// Stats renders the filter's metrics the way Envoy's admin /stats does: "name: value",
// sorted by name.
func (p *Proxy) Stats() string {
	m := p.host.Metrics()
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s: %d\n", n, m[n])
	}
	return b.String()
}

// AdminHandler serves /stats and /ready, like the loopback admin listener in envoy.yaml.
func (p *Proxy) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, p.Stats())
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		if !p.Ready() {
			http.Error(w, "NOT READY: a VM is being replaced", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "LIVE\n")
	})
	return mux
}
