package server

import (
	"io"
	"strings"
	"testing"
)

// Every tuning flag is read from the command line (they were once defined after the
// parse and refused as unknown), and from its variable.
func TestParseConfigTuningFlags(t *testing.T) {
	noEnv := func(string) string { return "" }
	c, err := ParseConfig([]string{"-history", "7", "-page-bytes", "8192", "-max-servers", "9", "-max-proxies", "11", "-replica-name", "r-1", "-init"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.History != 7 || c.PageBytes != 8192 || c.MaxServers != 9 || c.MaxProxies != 11 || c.ReplicaName != "r-1" || !c.Init {
		t.Errorf("parsed %+v", c)
	}
	env := map[string]string{"REGISTRAR_MAX_PROXIES": "12", "REGISTRAR_REPLICA_NAME": "r-2"}
	c, err = ParseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || c.MaxProxies != 12 || c.ReplicaName != "r-2" {
		t.Errorf("from the environment: %+v, %v", c, err)
	}
	if _, err := ParseConfig([]string{"-max-proxies", "0"}, noEnv, io.Discard); err == nil || !strings.Contains(err.Error(), "-max-proxies") {
		t.Errorf("-max-proxies 0: %v, want an error naming it", err)
	}
}
