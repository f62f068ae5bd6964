package server

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testkit/certs"
)

var lastBody string // the body of tlsGet's last answer

// serveTLS runs the real Serve (TLS from cfg's files) on 127.0.0.1 until the test ends
// and returns its https:// base URL.
func serveTLS(t *testing.T, cfg Config) string {
	t.Helper()
	s, err := newServer(t, cfg, filepath.Join(t.TempDir(), "servers.json"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "https://" + ln.Addr().String()
}

// tlsGet sends GET url over a fresh connection trusting ca, with the client
// certificate when one is given; it returns the status and the serial of the
// certificate the server showed; lastBody keeps the body.
func tlsGet(t *testing.T, url string, ca *certs.CA, client *tls.Certificate) (int, string, error) {
	t.Helper()
	cfg := &tls.Config{RootCAs: ca.Pool()}
	if client != nil { // sent whatever CAs the server names, as a misconfigured proxy would
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return client, nil }
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	lastBody = string(b)
	return resp.StatusCode, resp.TLS.PeerCertificates[0].SerialNumber.String(), nil
}

// TestTLSServesAndReloads: the registrar serves HTTPS from its certificate files, and
// a certificate written over them is served without a restart.
func TestTLSServesAndReloads(t *testing.T) {
	dir := t.TempDir()
	ca := certs.NewCA(t, dir, "registrar-ca")
	first := ca.Server(t, "registrar")
	base := serveTLS(t, Config{TLSCert: first.CertFile, TLSKey: first.KeyFile})

	code, serial, err := tlsGet(t, base+"/v1/routes?v=2", ca, nil)
	if err != nil || code != 200 || serial != first.Serial.String() {
		t.Fatalf("GET over TLS: %d serial %s err %v; want 200 with certificate %s", code, serial, err, first.Serial)
	}
	if r, err := http.Get("http" + strings.TrimPrefix(base, "https") + "/healthz"); err == nil {
		r.Body.Close()
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on the TLS port: %d, want 400", r.StatusCode)
		}
	}

	// A renewal: the same files rewritten with a new certificate.
	renewed := ca.Server(t, "registrar-renewed")
	for _, f := range [][2]string{{renewed.CertFile, first.CertFile}, {renewed.KeyFile, first.KeyFile}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for serial != renewed.Serial.String() && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		if code, serial, err = tlsGet(t, base+"/healthz", ca, nil); err != nil || code != 200 {
			t.Fatalf("GET after the renewal: %d %v", code, err)
		}
	}
	if serial != renewed.Serial.String() {
		t.Errorf("after the files changed the registrar still shows certificate %s, want %s", serial, renewed.Serial)
	}

	// A half-written renewal (a certificate without its key) keeps the pair in use.
	if err := os.WriteFile(first.KeyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if code, serial, err := tlsGet(t, base+"/healthz", ca, nil); err != nil || code != 200 || serial != renewed.Serial.String() {
		t.Errorf("with a broken key file: %d serial %s err %v; want the renewed certificate still served", code, serial, err)
	}
}

// TestTLSClientCertificates: with a client CA, /v1/ takes polls only with a client
// certificate it signed; /api/ needs none; a certificate of another CA fails the
// handshake.
func TestTLSClientCertificates(t *testing.T) {
	dir := t.TempDir()
	m := certs.NewMutual(t, dir, "edge-a")
	ca, srv, proxyCA, proxy := m.CA, m.Server, m.ProxyCA, m.Client
	stranger := certs.NewCA(t, dir, "other-ca").Client(t, "stranger")
	base := serveTLS(t, Config{TLSCert: srv.CertFile, TLSKey: srv.KeyFile, TLSClientCA: proxyCA.File()})

	if code, _, err := tlsGet(t, base+"/v1/routes?v=2&proxy=edge-a", ca, &proxy.TLS); err != nil || code != 200 {
		t.Errorf("poll with the proxy's certificate: %d %v, want 200", code, err)
	}
	if code, _, err := tlsGet(t, base+"/v1/routes?v=2&proxy=edge-b", ca, nil); err != nil || code != http.StatusForbidden {
		t.Errorf("poll without a client certificate: %d %v, want 403", code, err)
	}
	if code, _, err := tlsGet(t, base+"/api/servers", ca, nil); err != nil || code != 200 {
		t.Errorf("/api/servers without a client certificate: %d %v, want 200", code, err)
	}
	if code, _, err := tlsGet(t, base+"/v1/routes?v=2&proxy=edge-c", ca, &stranger.TLS); err == nil {
		t.Errorf("a client certificate of another CA was accepted (%d)", code)
	}
	// Only the poll that came with the certificate is listed.
	code, _, err := tlsGet(t, base+"/api/proxies", ca, nil)
	if err != nil || code != 200 || !strings.Contains(lastBody, `"proxy":"edge-a"`) || strings.Contains(lastBody, "edge-b") || strings.Contains(lastBody, "edge-c") {
		t.Fatalf("/api/proxies: %d %v %s; want edge-a listed, not the polls refused", code, err, lastBody)
	}
}

func TestTLSSettingsChecked(t *testing.T) {
	dir := t.TempDir()
	ca := certs.NewCA(t, dir, "ca")
	p := ca.Server(t, "registrar")
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("nothing"), 0o600)
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{TLSCert: p.CertFile}, "-tls-cert and -tls-key go together"},
		{Config{TLSClientCA: ca.File()}, "-tls-client-ca needs -tls-cert"},
		{Config{TLSCert: p.CertFile, TLSKey: bad}, "-tls-key " + bad},
		{Config{TLSCert: p.CertFile, TLSKey: p.KeyFile, TLSClientCA: bad}, "no PEM certificate"},
		{Config{Token: "same-token", ProxyToken: "same-token"}, "-proxy-token must differ from -token"},
	} {
		if err := c.cfg.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error with %q", c.cfg, err, c.want)
		}
	}
	if err := (Config{TLSCert: p.CertFile, TLSKey: p.KeyFile, TLSClientCA: ca.File()}).Check(); err != nil {
		t.Errorf("good files: %v", err)
	}
}
