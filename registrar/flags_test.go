package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
