package server

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// The registrar serves HTTPS when TLSCert and TLSKey are set. The certificate is read
// again when either file changes (checked at a handshake, at most once a second), so
// a renewed certificate (cert-manager rewriting a Secret's files, a cron job) is
// served without a restart; a pair that does not load keeps the one in use and is
// logged. With TLSClientCA, a client may present a certificate, which must be signed
// by one of its CAs; /v1/ then refuses a request that came without one (403), so
// proxies need a client certificate while the CMS and the page need none.

// certCheckEvery is how often a handshake may look at the certificate files.
const certCheckEvery = time.Second

// checkTLS is Check's part for the TLS settings: both files or neither, each
// loadable, and the client CA file only with them.
func (c Config) checkTLS() error {
	switch {
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("-tls-cert and -tls-key go together: give both (PEM files of the certificate chain and its private key) or neither")
	case c.TLSCert == "" && c.TLSClientCA != "":
		return errors.New("-tls-client-ca needs -tls-cert and -tls-key: client certificates are asked for over HTTPS only")
	case c.TLSCert == "":
		return nil
	}
	if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
		return fmt.Errorf("-tls-cert %s / -tls-key %s: %v", c.TLSCert, c.TLSKey, err)
	}
	if c.TLSClientCA != "" {
		if _, err := loadCAs(c.TLSClientCA); err != nil {
			return err
		}
	}
	return nil
}

// loadCAs reads a PEM file of CA certificates.
func loadCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-tls-client-ca: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("-tls-client-ca %s: no PEM certificate in the file (it must hold the CA certificates that sign the proxies' client certificates)", path)
	}
	return pool, nil
}

// tlsConfig is the server side of the registrar's TLS, from c's files.
func (c Config) tlsConfig(log *slog.Logger) (*tls.Config, error) {
	r := &certReloader{certFile: c.TLSCert, keyFile: c.TLSKey, log: log}
	if err := r.load(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.get, NextProtos: []string{"http/1.1"}}
	if c.TLSClientCA != "" {
		pool, err := loadCAs(c.TLSClientCA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// certReloader serves the certificate of certFile/keyFile, read again when either
// file's content changes.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	certPEM   []byte // the files' contents the certificate was made from
	keyPEM    []byte
	checkedAt time.Time
}

func (r *certReloader) load() error {
	certPEM, err := os.ReadFile(r.certFile)
	if err != nil {
		return fmt.Errorf("-tls-cert: %v", err)
	}
	keyPEM, err := os.ReadFile(r.keyFile)
	if err != nil {
		return fmt.Errorf("-tls-key: %v", err)
	}
	if r.cert != nil && bytes.Equal(certPEM, r.certPEM) && bytes.Equal(keyPEM, r.keyPEM) {
		return nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("-tls-cert %s / -tls-key %s: %v", r.certFile, r.keyFile, err)
	}
	if r.cert != nil {
		r.log.Info("serving the certificate read again from its files", "cert", r.certFile)
	}
	r.cert, r.certPEM, r.keyPEM = &cert, certPEM, keyPEM
	return nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checkedAt) >= certCheckEvery {
		r.checkedAt = now
		if err := r.load(); err != nil {
			// A half-written renewal (the certificate written, not yet its key) is
			// normal for a moment: keep serving the pair that loaded.
			r.log.Warn("the certificate files do not load; still serving the previous certificate", "err", err)
		}
	}
	return r.cert, nil
}

// listener wraps ln in TLS when c serves HTTPS.
func (c Config) listener(ln net.Listener, log *slog.Logger) (net.Listener, error) {
	if c.TLSCert == "" {
		return ln, nil
	}
	cfg, err := c.tlsConfig(log)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(ln, cfg), nil
}

// requireClientCert refuses (403) a request without a verified client certificate
// when -tls-client-ca is set; the TLS handshake has already refused one that is not
// signed by its CAs.
func (s *Server) requireClientCert(next http.Handler) http.Handler {
	if s.cfg.TLSClientCA == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			w.Header().Set("Connection", "close")
			writeFailure(w, http.StatusForbidden, "a client certificate is required: the registrar's /v1/ takes polls only from proxies with a certificate signed by its -tls-client-ca")
			return
		}
		next.ServeHTTP(w, r)
	})
}
