package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"switchyard/internal/testkit/certs"
)

// Every tuning flag is read from the command line (a flag defined after the parse
// would be refused as unknown), and from its variable.
func TestParseFlagsTuningFlags(t *testing.T) {
	noEnv := func(string) string { return "" }
	c, err := parseFlags([]string{"-history", "7", "-page-bytes", "8192", "-max-servers", "9", "-max-proxies", "11", "-replica-name", "r-1", "-init"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.server.History != 7 || c.server.PageBytes != 8192 || c.server.MaxServers != 9 || c.server.MaxProxies != 11 || c.server.ReplicaName != "r-1" || !c.Init {
		t.Errorf("parsed %+v", c)
	}
	env := map[string]string{"REGISTRAR_MAX_PROXIES": "12", "REGISTRAR_REPLICA_NAME": "r-2"}
	c, err = parseFlags(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || c.server.MaxProxies != 12 || c.server.ReplicaName != "r-2" {
		t.Errorf("from the environment: %+v, %v", c, err)
	}
	if _, err := parseFlags([]string{"-max-proxies", "0"}, noEnv, io.Discard); err == nil || !strings.Contains(err.Error(), "-max-proxies") {
		t.Errorf("-max-proxies 0: %v, want an error naming it", err)
	}
}

// The proxy token and the TLS files are read from their flags and variables, and a
// bad combination is refused with an error naming the setting.
func TestParseFlagsProxyTokenAndTLS(t *testing.T) {
	dir := t.TempDir()
	ca := certs.NewCA(t, dir, "ca")
	p := ca.Server(t, "registrar")
	tokenFile := filepath.Join(dir, "proxy-token")
	if err := os.WriteFile(tokenFile, []byte("proxy-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	readable := filepath.Join(dir, "proxy-token-readable")
	if err := os.WriteFile(readable, []byte("proxy-secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(readable, 0o644) // whatever the umask
	noEnv := func(string) string { return "" }
	c, err := parseFlags([]string{"-token", "cms-secret", "-proxy-token-file", tokenFile, "-tls-cert", p.CertFile, "-tls-key", p.KeyFile, "-tls-client-ca", ca.File()}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.server.ProxyToken != "proxy-secret" || c.server.Token != "cms-secret" || c.server.TLSCert != p.CertFile || c.server.TLSKey != p.KeyFile || c.server.TLSClientCA != ca.File() {
		t.Errorf("parsed %+v", c.server)
	}
	env := map[string]string{"REGISTRAR_PROXY_TOKEN": "proxy-env", "REGISTRAR_TLS_CERT": p.CertFile, "REGISTRAR_TLS_KEY": p.KeyFile}
	c, err = parseFlags(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || c.server.ProxyToken != "proxy-env" || c.server.TLSCert != p.CertFile {
		t.Errorf("from the environment: %+v, %v", c.server, err)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"-proxy-token", "a", "-proxy-token-file", tokenFile}, "either -proxy-token or -proxy-token-file"},
		{[]string{"-proxy-token", "same", "-token", "same"}, "-proxy-token must differ from -token"},
		{[]string{"-proxy-token", "has space"}, "-proxy-token: the token must not contain spaces"},
		{[]string{"-proxy-token-file", readable}, "chmod 600 " + readable},
		{[]string{"-tls-cert", p.CertFile}, "-tls-cert and -tls-key go together"},
		{[]string{"-tls-cert", p.CertFile, "-tls-key", tokenFile}, "-tls-key " + tokenFile},
	} {
		if _, err := parseFlags(bad.args, noEnv, io.Discard); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: %v, want an error with %q", bad.args, err, bad.want)
		}
	}
}

// A token file others may read is refused, as ssh refuses such a key: the error names
// the file and the chmod that fixes it. A file only its owner (and group) may read is
// taken.
func TestTokenFileReadableByOthersRefused(t *testing.T) {
	noEnv := func(string) string { return "" }
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644) // whatever the umask
	_, err := parseFlags([]string{"-token-file", path}, noEnv, io.Discard)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Fatalf("0644 token file: %v, want a refusal naming %s and the chmod", err, path)
	}
	_, err = parseFlags(nil, func(k string) string { return map[string]string{"REGISTRAR_TOKEN_FILE": path}[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("0644 token file from REGISTRAR_TOKEN_FILE: %v, want a refusal", err)
	}
	for _, mode := range []os.FileMode{0o600, 0o400, 0o440} {
		os.Chmod(path, mode)
		c, err := parseFlags([]string{"-token-file", path}, noEnv, io.Discard)
		if err != nil || c.server.Token != "s3cret" {
			t.Fatalf("%o token file: %q, %v", mode, c.server.Token, err)
		}
	}
}
