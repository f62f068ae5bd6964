package devproxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// targetRefusedError is a target the dialer would not connect to; reason names the
// kind of address, never the address itself (the client reads it).
type targetRefusedError struct{ reason string }

func (e *targetRefusedError) Error() string { return "target refused: " + e.reason }

// newDFPTransport is the dynamic forward proxy cluster: it connects to the
// :authority the filter chose, resolving a DNS name at connect time and checking
// every resolved address against the dialer policy before connecting.
func (p *Proxy) newDFPTransport() *http.Transport {
	spec := p.dfpSpec()
	t := newTransport(0, 0, spec.idleTimeout)
	t.DialContext = p.guardedDial(spec.connectTimeout)
	return t
}

// newUpgradeTransport carries WebSocket upgrades: no pooling (the tunnel keeps its
// connection), and the route's idle timeout on the upstream side of the tunnel.
func (p *Proxy) newUpgradeTransport() *http.Transport {
	spec := p.dfpSpec()
	t := newTransport(0, 0, 0)
	t.DisableKeepAlives = true
	dial := p.guardedDial(spec.connectTimeout)
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return idleConn(ctx, c), nil
	}
	return t
}

func (p *Proxy) dfpSpec() *clusterSpec {
	for _, c := range p.site.clusters {
		if c.dfp {
			return c
		}
	}
	return &clusterSpec{connectTimeout: defaultConnectTimeout, idleTimeout: defaultConnIdle}
}

// guardedDial resolves addr and connects to the first resolved address the policy
// allows; it refuses when every address is refused.
func (p *Proxy) guardedDial(timeout time.Duration) func(context.Context, string, string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		var refused error
		for _, ip := range ips {
			if err := p.checkTarget(ip); err != nil {
				refused = err
				continue
			}
			return d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		}
		if refused == nil {
			refused = errors.New("no address")
		}
		return nil, refused
	}
}

// checkTarget applies the target policy (targetpolicy.go) to one resolved address.
func (p *Proxy) checkTarget(ip netip.Addr) error {
	return TargetPolicy{Allow: p.cfg.AllowCIDR}.check(ip, p.site.dnsFilter)
}

// idleConn closes the connection after the route's idle timeout passes with no byte
// either way (Envoy's route idle_timeout, or the stream_idle_timeout).
type idleDeadlineConn struct {
	net.Conn
	idle time.Duration
}

type idleKey struct{}

func idleConn(ctx context.Context, c net.Conn) net.Conn {
	idle, _ := ctx.Value(idleKey{}).(time.Duration)
	if idle <= 0 {
		return c
	}
	ic := &idleDeadlineConn{Conn: c, idle: idle}
	c.SetDeadline(time.Now().Add(idle))
	return ic
}

func (c *idleDeadlineConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.Conn.SetDeadline(time.Now().Add(c.idle))
	}
	return n, err
}

func (c *idleDeadlineConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.Conn.SetDeadline(time.Now().Add(c.idle))
	}
	return n, err
}
