// Package devproxy is the Envoy stand-in for development and tests: it runs the real
// filter.wasm on the wasmhost the way Envoy does (one `sync` VM for the process, one
// `router` VM per worker, all on one vm_id) and forwards HTTP like the routes in
// envoy.yaml: path_prefixes (default /sys) through the router and then to the target it
// chose, /api/ and /v1/ to the registrar, everything else to the upstream or 404.
//
// What it promises, beyond Envoy's behaviour that the host reproduces:
//   - a request is never left hanging on a broken VM: a router VM that traps answers
//     503 for the request that found it dead and is replaced in the background;
//   - the sync VM is replaced the same way, so the table keeps following the registrar;
//   - WebSocket upgrades pass through on routed paths;
//   - local replies from the filter go out as the filter wrote them.
package devproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"switchyard/internal/pluginconfig"
	"switchyard/wasmhost"
)

// Config is what New needs. Wasm and RegistrarURL are required.
type Config struct {
	Wasm         []byte           // the filter module
	PluginConfig []byte           // the filter's JSON configuration; empty means its defaults
	RegistrarURL string           // base URL of the registrar, e.g. http://127.0.0.1:9000
	UpstreamURL  string           // where paths outside the filter and the registrar go; empty: 404
	Workers      int              // router VMs; 0 means runtime.NumCPU()
	Profile      wasmhost.Profile // Envoy behaviour the host reproduces
	Clock        wasmhost.Clock   // nil: real time
	Logger       *slog.Logger     // nil: slog.Default()
	// HostLogOutput, when set, receives every log line the VMs write, Envoy-style.
	HostLogOutput io.Writer
	// VMID is the vm_id both roots share; default "switchyard".
	VMID string
}

// Proxy is an http.Handler. Close releases its VMs.
type Proxy struct {
	cfg       Config
	log       *slog.Logger
	host      *wasmhost.Host
	module    *wasmhost.Module
	prefixes  []string
	sync      *slot
	routers   []*slot
	next      atomic.Uint64
	registrar *httputil.ReverseProxy
	upstream  *httputil.ReverseProxy
	routed    *httputil.ReverseProxy
	closeOnce sync.Once
	closed    chan struct{}
}

// New loads the module and starts the sync VM and the router VMs. Any refusal Envoy
// would make (an import it does not link, no ABI marker, a trap or a false from
// on_configure while starting) is returned with the host's words.
func New(ctx context.Context, cfg Config) (*Proxy, error) {
	if len(cfg.Wasm) == 0 {
		return nil, errors.New("devproxy: no wasm module given")
	}
	regURL, err := parseBaseURL("registrar", cfg.RegistrarURL)
	if err != nil {
		return nil, err
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.NumCPU()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.VMID == "" {
		cfg.VMID = "switchyard"
	}
	// The filter's own parser: a configuration the filter would refuse is refused here,
	// with the same words, before any VM starts.
	st, err := pluginconfig.Parse(cfg.PluginConfig)
	if err != nil {
		return nil, fmt.Errorf("devproxy: plugin configuration: %w", err)
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger, prefixes: st.PathPrefixes, closed: make(chan struct{})}
	p.host = wasmhost.New(wasmhost.Options{
		Profile:   cfg.Profile,
		Clock:     cfg.Clock,
		Clusters:  map[string]string{st.Registrar.Cluster: regURL.String()},
		LogOutput: cfg.HostLogOutput,
	})
	p.module, err = p.host.Load(ctx, cfg.Wasm)
	if err != nil {
		p.host.Close()
		return nil, err
	}
	plugin := func(root string) wasmhost.PluginConfig {
		return wasmhost.PluginConfig{Name: "switchyard", RootID: root, VMID: cfg.VMID, Configuration: cfg.PluginConfig}
	}
	if p.sync, err = p.newSlot(ctx, "sync", plugin("sync")); err != nil {
		p.host.Close()
		return nil, err
	}
	for i := 0; i < cfg.Workers; i++ {
		s, err := p.newSlot(ctx, fmt.Sprintf("router-%d", i), plugin("router"))
		if err != nil {
			p.Close()
			return nil, err
		}
		p.routers = append(p.routers, s)
	}
	p.registrar = &httputil.ReverseProxy{
		Rewrite:      func(pr *httputil.ProxyRequest) { pr.SetURL(regURL); pr.SetXForwarded() },
		Transport:    newTransport(0), // long-polls hold for up to a minute
		ErrorHandler: p.upstreamError,
		BufferPool:   copyBuffers,
	}
	if cfg.UpstreamURL != "" {
		upURL, err := parseBaseURL("upstream", cfg.UpstreamURL)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.upstream = &httputil.ReverseProxy{
			Rewrite:      func(pr *httputil.ProxyRequest) { pr.SetURL(upURL); pr.Out.Host = pr.In.Host; pr.SetXForwarded() },
			Transport:    newTransport(60 * time.Second),
			ErrorHandler: p.upstreamError,
			BufferPool:   copyBuffers,
		}
	}
	p.routed = &httputil.ReverseProxy{
		Rewrite:        rewriteRouted,
		ModifyResponse: responseThroughFilter,
		Transport:      newTransport(60 * time.Second),
		ErrorHandler:   p.upstreamError,
		BufferPool:     copyBuffers,
	}
	return p, nil
}

func parseBaseURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("devproxy: %s URL %q must look like http://127.0.0.1:9000", what, raw)
	}
	return u, nil
}

// newTransport is the upstream connection pool; responseHeader 0 means no limit on
// the wait for response headers (long-polls).
func newTransport(responseHeader time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // never an outside proxy: targets are what the filter chose
	t.MaxIdleConnsPerHost = 256
	t.ResponseHeaderTimeout = responseHeader
	return t
}

// copyBuffers lends the reverse proxies the buffers they copy bodies through. Without
// it each response allocates (and clears) a fresh 32 KiB buffer, which under load was
// the largest single source of garbage in the proxy.
var copyBuffers = &bufferPool{}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// Close stops every VM and the host. In-flight requests on a closed VM get 503.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		close(p.closed)
		if p.sync != nil {
			p.sync.close()
		}
		for _, s := range p.routers {
			s.close()
		}
		p.host.Close()
	})
	return nil
}

// Host is the wasmhost the VMs run on (metrics, logs, shared data).
func (p *Proxy) Host() *wasmhost.Host { return p.host }

// Ready reports whether the sync VM and every router VM are alive.
func (p *Proxy) Ready() bool {
	if p.sync.current() == nil {
		return false
	}
	for _, s := range p.routers {
		if s.current() == nil {
			return false
		}
	}
	return true
}

// Routed reports whether path goes through the router: path_prefixes matched by
// whole segments, exactly as the filter matches them (/sys, /sys/..., /sys?..., not
// /system).
func (p *Proxy) Routed(path string) bool { return pluginconfig.MatchesPrefix(path, p.prefixes) }

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch path := r.URL.Path; {
	case p.Routed(r.RequestURI) || p.Routed(path):
		p.serveRouted(w, r)
	case strings.HasPrefix(path, "/api/") || path == "/api" || strings.HasPrefix(path, "/v1/"):
		p.registrar.ServeHTTP(w, r)
	case p.upstream != nil:
		p.upstream.ServeHTTP(w, r)
	default:
		writeJSON(w, http.StatusNotFound, "no_route", "no route for "+path)
	}
}

// writeJSON answers the way the filter's local replies do, for the proxy's own errors.
func writeJSON(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]string{"error": code, "message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// upstreamError answers as Envoy does when the chosen upstream fails: 504 on a
// timeout, 503 when it cannot be reached or reset the connection.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.Canceled) {
		return // the client went away; nobody to answer
	}
	status, code := http.StatusServiceUnavailable, "upstream_unavailable"
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		status, code = http.StatusGatewayTimeout, "upstream_timeout"
	}
	p.log.Warn("upstream failed", "path", r.URL.Path, "host", r.URL.Host, "err", err)
	writeJSON(w, status, code, "upstream "+r.URL.Host+" failed: "+err.Error())
}

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
