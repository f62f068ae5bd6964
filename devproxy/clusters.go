package devproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// A request to a cluster leaves with URL host = the cluster's name; clusterTransport
// turns that into one of the cluster's endpoints, the way Envoy's load balancer picks
// a host: round robin over the endpoints that are healthy. An endpoint is unhealthy
// while its active health check fails (health_checks) or, for ejectFor after a
// connection to it failed (passive, like outlier detection). A request whose
// connection could not be made is tried on the next endpoint when its route's
// retry_policy allows (retry_on connect-failure; nothing reached the failed one, so
// this is safe for every method). The wasm filter's http calls get no retry, as in
// Envoy: the sync retries a failed poll itself, and by then the endpoint that failed
// is ejected.
type clusterTransport struct {
	clusters map[string]*endpointPool
}

// ejectFor is how long an endpoint that refused a connection is skipped (Envoy's
// outlier detection base_ejection_time defaults to 30 s).
const ejectFor = 30 * time.Second

type endpointPool struct {
	name      string
	base      *http.Transport // the cluster's connect and idle timeouts
	upgrades  *http.Transport // for WebSocket upgrades: no pooling, the tunnel's idle timeout
	endpoints []*endpoint
	next      atomic.Uint64
}

type endpoint struct {
	url          *url.URL
	ejectedUntil atomic.Int64 // unix nanoseconds; passive ejection after a connect failure
	checkFailing atomic.Bool  // the active health check says unhealthy
}

func (e *endpoint) healthy(now time.Time) bool {
	return !e.checkFailing.Load() && now.UnixNano() >= e.ejectedUntil.Load()
}

// errNoEndpoint is a cluster without addresses (none given on the command line).
var errNoEndpoint = errors.New("no endpoint")

// order gives the endpoints to try: healthy ones first, round robin, then the
// unhealthy ones (Envoy's panic mode: better to try than to fail without trying).
func (p *endpointPool) order(now time.Time) []*endpoint {
	n := len(p.endpoints)
	start := int(p.next.Add(1) % uint64(n))
	out := make([]*endpoint, 0, n)
	for i := 0; i < n; i++ {
		if e := p.endpoints[(start+i)%n]; e.healthy(now) {
			out = append(out, e)
		}
	}
	for i := 0; i < n; i++ {
		if e := p.endpoints[(start+i)%n]; !e.healthy(now) {
			out = append(out, e)
		}
	}
	return out
}

// retriesKey carries a request's retries on connect failure (its route's
// retry_policy num_retries); absent: none.
type retriesKey struct{}

func (t *clusterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	pool, ok := t.clusters[req.URL.Host]
	if !ok || len(pool.endpoints) == 0 {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("cluster %s: %w", req.URL.Host, errNoEndpoint)
	}
	// The body is read once; a retry is possible only while nothing of it was read.
	// On success the body is left open: the transport may still be sending it, and
	// its owner (net/http's server, or the host's call) closes it when done.
	var body *onceBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &onceBody{rc: req.Body}
	}
	retries, _ := req.Context().Value(retriesKey{}).(int)
	var lastErr error
	for i, e := range pool.order(time.Now()) {
		if i > retries {
			break
		}
		out := req.Clone(req.Context())
		out.URL.Scheme, out.URL.Host = e.url.Scheme, e.url.Host
		if body != nil {
			out.Body = body
		}
		tr := pool.base
		if up, _ := req.Context().Value(upgradeKey{}).(bool); up {
			tr = pool.upgrades
		}
		resp, err := tr.RoundTrip(out)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if !isConnectFailure(err) {
			break
		}
		e.ejectedUntil.Store(time.Now().Add(ejectFor).UnixNano())
		if (body != nil && body.read.Load()) || req.Context().Err() != nil {
			break
		}
	}
	if body != nil {
		body.rc.Close()
	}
	return nil, lastErr
}

// onceBody passes reads through and ignores Close, so a body nothing was read from
// can be offered to the next endpoint.
type onceBody struct {
	rc   io.ReadCloser
	read atomic.Bool
}

func (b *onceBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.rc.Read(p)
}

func (b *onceBody) Close() error { return nil }

// isConnectFailure reports an error from making the connection (nothing was sent).
func isConnectFailure(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// healthChecks runs each pool's active health check until ctx ends: every interval,
// a TCP connect or an HTTP GET of the path (2xx is healthy); unhealthy after
// unhealthy_threshold failures in a row, healthy again after healthy_threshold
// successes. Until its first check an endpoint counts as healthy (Envoy counts it
// unhealthy; the dev proxy starts serving at once instead).
func (t *clusterTransport) healthChecks(ctx context.Context, specs map[string]*clusterSpec, log *slog.Logger) {
	for name, pool := range t.clusters {
		hc := specs[name].health
		if hc == nil {
			continue
		}
		for _, e := range pool.endpoints {
			go runHealthCheck(ctx, name, e, hc, log)
		}
	}
}

func runHealthCheck(ctx context.Context, cluster string, e *endpoint, hc *healthCheck, log *slog.Logger) {
	client := &http.Client{Timeout: hc.timeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	fails, oks := 0, 0
	tick := time.NewTicker(hc.interval)
	defer tick.Stop()
	for {
		ok := false
		if hc.httpPath != "" {
			req, _ := http.NewRequestWithContext(ctx, "GET", e.url.Scheme+"://"+e.url.Host+hc.httpPath, nil)
			if hc.httpHost != "" {
				req.Host = hc.httpHost
			}
			if resp, err := client.Do(req); err == nil {
				io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				ok = resp.StatusCode >= 200 && resp.StatusCode < 300
			}
		} else if c, err := (&net.Dialer{Timeout: hc.timeout}).DialContext(ctx, "tcp", e.url.Host); err == nil {
			c.Close()
			ok = true
		}
		if ok {
			fails, oks = 0, oks+1
			if oks >= hc.healthy && e.checkFailing.Swap(false) {
				log.Info("endpoint healthy again", "cluster", cluster, "endpoint", e.url.Host)
			}
		} else {
			oks, fails = 0, fails+1
			if fails >= hc.unhealthy && !e.checkFailing.Swap(true) {
				log.Warn("endpoint failed its health check; skipped until it passes", "cluster", cluster, "endpoint", e.url.Host)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// newClusterTransport makes the pools from the given addresses; tlsFor gives a
// cluster's TLS client setting for its https:// endpoints (none: Go's defaults).
func newClusterTransport(specs map[string]*clusterSpec, addrs map[string][]string, tlsFor map[string]*tls.Config) (*clusterTransport, error) {
	t := &clusterTransport{clusters: map[string]*endpointPool{}}
	for name, spec := range specs {
		if spec.dfp {
			continue
		}
		// No response-header timer here: the route's timeout bounds a request, and the
		// sync's long-poll has its own.
		pool := &endpointPool{name: name, base: newTransport(0, spec.connectTimeout, spec.idleTimeout)}
		pool.upgrades = newTransport(0, spec.connectTimeout, 0)
		pool.upgrades.DisableKeepAlives = true
		if c := tlsFor[name]; c != nil {
			pool.base.TLSClientConfig, pool.upgrades.TLSClientConfig = c.Clone(), c.Clone()
		}
		dial := pool.upgrades.DialContext
		pool.upgrades.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return idleConn(ctx, c), nil
		}
		for _, raw := range addrs[name] {
			u, err := parseBaseURL("cluster "+name, raw)
			if err != nil {
				return nil, err
			}
			pool.endpoints = append(pool.endpoints, &endpoint{url: u})
		}
		t.clusters[name] = pool
	}
	for name := range addrs {
		if spec, ok := specs[name]; !ok || spec.dfp {
			return nil, fmt.Errorf("devproxy: an address is given for cluster %q, which the Envoy config does not define as a static cluster", name)
		}
	}
	return t, nil
}

func parseBaseURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("devproxy: %s address %q must look like http://127.0.0.1:9000", what, raw)
	}
	return u, nil
}

// newTransport is an upstream connection pool. responseHeader 0: no limit on the wait
// for response headers (long-polls); connect and idle 0: Go's defaults.
func newTransport(responseHeader, connect, idle time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // never an outside proxy: targets are what the config and the filter chose
	t.MaxIdleConnsPerHost = 256
	t.ResponseHeaderTimeout = responseHeader
	if connect > 0 {
		t.DialContext = (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext
	}
	if idle > 0 {
		t.IdleConnTimeout = idle
	}
	return t
}
