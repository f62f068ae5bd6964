package server

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/internal/targetpolicy"
	"switchyard/internal/testkit/apitest"
	"switchyard/registrar/store"

	"github.com/prometheus/client_golang/prometheus"
)

// dnsServer answers A queries over UDP on 127.0.0.1 from names (name → IPv4 address),
// and every other query with no answer: a real resolver for a test's DNS-name targets.
func dnsServer(t *testing.T, names map[string]netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			if len(q) < 12 {
				continue
			}
			// The question: labels up to a zero byte, then type and class.
			i, labels := 12, []string{}
			for i < len(q) && q[i] != 0 && i+1+int(q[i]) <= len(q) {
				labels = append(labels, string(q[i+1:i+1+int(q[i])]))
				i += 1 + int(q[i])
			}
			if i+5 > len(q) {
				continue
			}
			question := q[12 : i+5]
			qtype := binary.BigEndian.Uint16(q[i+1:])
			ip, ok := names[strings.ToLower(strings.Join(labels, "."))]
			var an uint16
			if ok && qtype == 1 {
				an = 1
			}
			out := binary.BigEndian.AppendUint16(nil, binary.BigEndian.Uint16(q)) // id
			out = binary.BigEndian.AppendUint16(out, 0x8180)                      // response, recursion desired and available, no error
			out = append(out, 0, 1, byte(an>>8), byte(an), 0, 0, 0, 0)            // 1 question, an answers
			out = append(out, question...)
			if an == 1 {
				out = append(out, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4) // the name at 12, A, IN, TTL 60, 4 bytes
				out = append(out, ip.AsSlice()...)
			}
			pc.WriteTo(out, from)
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

// A DNS-name target is checked only at the addresses it resolves to that the target
// policy allows: a name resolving to a refused address is never connected to (its
// check fails, and it is marked down), while a name resolving to an allowed address is
// checked there and stays up.
func TestHealthCheckRefusesResolvedAddress(t *testing.T) {
	refused := apitest.NewHealthTarget(t, "127.0.0.2")
	allowed := apitest.NewHealthTarget(t, "127.0.0.1")
	_, refusedPort, _ := net.SplitHostPort(refused.Addr)
	_, allowedPort, _ := net.SplitHostPort(allowed.Addr)
	resolver := dnsServer(t, map[string]netip.Addr{
		"inside.test":  netip.MustParseAddr("127.0.0.1"),
		"outside.test": netip.MustParseAddr("127.0.0.2"),
	})
	st, err := store.Open(filepath.Join(t.TempDir(), "servers.json"), store.EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hc := store.HealthCheck{Path: "/healthz", Interval: store.Duration(300 * time.Millisecond), Timeout: store.Duration(300 * time.Millisecond), HealthyThreshold: 1, UnhealthyThreshold: 2}
	sv := store.NewServer("web", "shop", []store.Target{
		{Address: "outside.test:" + refusedPort, Weight: 1, State: store.StateActive},
		{Address: "inside.test:" + allowedPort, Weight: 1, State: store.StateActive}})
	sv.HealthCheck = &hc
	if out := st.Write(store.Change{Name: "web", Server: &sv}); out.Err != nil {
		t.Fatal(out.Err)
	}
	policy := targetpolicy.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	for _, ts := range sv.Targets {
		if err := checkAddress(ts.Address, policy, "address"); err != nil {
			t.Fatalf("%s is refused as written (%v); the test needs names the write allows", ts.Address, err)
		}
	}
	c := newChecker(st, policy, slog.New(slog.DiscardHandler), soleLeader{}, func() string { return "test" }, prometheus.NewRegistry())
	c.resolver = resolver
	ctx, cancel := context.WithCancel(context.Background())
	go c.run(ctx)
	t.Cleanup(func() { cancel(); <-c.done })

	waitFor(t, "outside.test marked down", func() bool {
		got, _ := st.Current().Get("web")
		return got.Targets != nil && got.Targets[0].Down
	})
	waitFor(t, "inside.test checked 3 times", func() bool { return allowed.Hits() >= 3 })
	if got, _ := st.Current().Get("web"); got.Targets[1].Down {
		t.Errorf("inside.test, which passes its checks, is marked down")
	}
	if n := refused.Hits() + refused.Others.Load(); n != 0 {
		t.Errorf("the address outside.test resolves to, which the policy refuses, was connected to %d times", n)
	}
}
