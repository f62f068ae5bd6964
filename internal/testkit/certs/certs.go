// Package certs makes real X.509 certificates for tests: a CA, and server and client
// certificates it signs, written as PEM files.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority: its certificate and key.
type CA struct {
	Cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	PEM     []byte // the certificate, PEM
	serial  int64
	CertDir string // where its files are written
}

// NewCA makes a CA named name and writes its certificate to <dir>/<name>.pem.
func NewCA(t testing.TB, dir, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &CA{Cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), serial: 1, CertDir: dir}
	write(t, filepath.Join(dir, name+".pem"), ca.PEM)
	return ca
}

// File is the path of the CA's certificate file.
func (ca *CA) File() string { return filepath.Join(ca.CertDir, ca.Cert.Subject.CommonName+".pem") }

// Pool is a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Pair is an issued certificate: its PEM files and the loaded pair.
type Pair struct {
	CertFile, KeyFile string
	TLS               tls.Certificate
	Serial            *big.Int
}

// Server issues a server certificate for 127.0.0.1 and localhost named cn, written to
// <dir>/<cn>.crt and <dir>/<cn>.key.
func (ca *CA) Server(t testing.TB, cn string) Pair {
	return ca.issue(t, cn, x509.ExtKeyUsageServerAuth)
}

// Client issues a client certificate named cn.
func (ca *CA) Client(t testing.TB, cn string) Pair {
	return ca.issue(t, cn, x509.ExtKeyUsageClientAuth)
}

func (ca *CA) issue(t testing.TB, cn string, usage x509.ExtKeyUsage) Pair {
	t.Helper()
	key := newKey(t)
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	p := Pair{CertFile: filepath.Join(ca.CertDir, cn+".crt"), KeyFile: filepath.Join(ca.CertDir, cn+".key"), Serial: tmpl.SerialNumber}
	write(t, p.KeyFile, keyPEM)
	write(t, p.CertFile, certPEM)
	if p.TLS, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return p
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func write(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Mutual is what a registrar with client certificates needs: the CA its server
// certificate is signed by, that certificate (for 127.0.0.1 and localhost), the CA
// of the proxies' client certificates, and one client certificate it signed.
type Mutual struct {
	CA      *CA
	Server  Pair
	ProxyCA *CA
	Client  Pair
}

// NewMutual makes a Mutual in dir; the client certificate is named client.
func NewMutual(t testing.TB, dir, client string) Mutual {
	t.Helper()
	m := Mutual{CA: NewCA(t, dir, "registrar-ca"), ProxyCA: NewCA(t, dir, "proxy-ca")}
	m.Server = m.CA.Server(t, "registrar")
	m.Client = m.ProxyCA.Client(t, client)
	return m
}
