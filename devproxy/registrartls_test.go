package devproxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testkit/bin"
	"switchyard/internal/testkit/certs"
	"switchyard/internal/testkit/proc"
	"switchyard/internal/testkit/wait"
)

// TestRegistrarOverTLS: the filter in the dev proxy polls a registrar that serves
// HTTPS, requires a client certificate on /v1/ and takes only the proxy token there,
// and routes what the CMS registered with its own token.
func TestRegistrarOverTLS(t *testing.T) {
	dir := t.TempDir()
	m := certs.NewMutual(t, dir, "edge-a")
	ca, srv, proxyCA, client := m.CA, m.Server, m.ProxyCA, m.Client
	reg := proc.StartRegistrar(t, "-data", filepath.Join(dir, "servers.json"), "-allow-cidr", "127.0.0.0/8",
		"-token", "cms-secret", "-proxy-token", "proxy-secret",
		"-tls-cert", srv.CertFile, "-tls-key", srv.KeyFile, "-tls-client-ca", proxyCA.File())
	base := "https://" + reg.Addr()
	target := newRecorder(t, "target")

	cms := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	req, _ := http.NewRequest("POST", base+"/api/servers/register", strings.NewReader(
		fmt.Sprintf(`{"host":"web-1","ipAddress":%q,"serviceName":"tls"}`, target.addr)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer cms-secret")
	resp, err := cms.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("register over TLS: %d", resp.StatusCode)
	}

	regTLS, err := RegistrarTLS(ca.File(), client.CertFile, client.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(t.Context(), Config{
		Wasm: bin.Read(t, "filter.wasm"), Envoy: repoEnvoy(t, `"token": ""`, `"token": "proxy-secret"`),
		Registrar: []string{base}, RegistrarTLS: regTLS, Workers: 1,
		AllowCIDR: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	wait.Eventually(t, 15*time.Second, func() string {
		req, _ := http.NewRequest("GET", front.URL+"/sys/ready", nil)
		req.Header.Set("X-Server-Name", "web-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Sprintf("web-1 not routed through a table polled over TLS: %d %s", resp.StatusCode, b)
		}
		return ""
	})
}

func TestRegistrarTLSFlagsChecked(t *testing.T) {
	dir := t.TempDir()
	ca := certs.NewCA(t, dir, "ca")
	c := ca.Client(t, "edge")
	for _, bad := range []struct{ ca, cert, key, want string }{
		{"", c.CertFile, "", "-registrar-cert and -registrar-key go together"},
		{c.KeyFile, "", "", "no PEM certificate"},
		{filepath.Join(dir, "missing"), "", "", "-registrar-ca"},
		{"", c.CertFile, ca.File(), "-registrar-cert " + c.CertFile},
	} {
		if _, err := RegistrarTLS(bad.ca, bad.cert, bad.key); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want an error with %q", bad, err, bad.want)
		}
	}
	if cfg, err := RegistrarTLS(ca.File(), c.CertFile, c.KeyFile); err != nil || cfg.RootCAs == nil || len(cfg.Certificates) != 1 {
		t.Errorf("good files: %+v %v", cfg, err)
	}
}
