package main

import (
	"io"
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
