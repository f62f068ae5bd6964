package devproxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// RegistrarTLS builds Config.RegistrarTLS from the dev proxy's flags: caFile, PEM CA
// certificates to trust for an https:// registrar (empty: the system's), and
// certFile/keyFile, a client certificate for a registrar that requires one (both or
// neither). It returns nil when none is given.
func RegistrarTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("-registrar-cert and -registrar-key go together: give both (the client certificate and its key) or neither")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("-registrar-ca: %v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("-registrar-ca %s: no PEM certificate in the file (it must hold the CA that signed the registrar's -tls-cert)", caFile)
		}
	}
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("-registrar-cert %s / -registrar-key %s: %v", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}
