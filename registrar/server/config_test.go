package server

import (
	"io"
	"strings"
	"testing"
	"time"
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

// -health-election-ttl: whole seconds from 2 s to 60 s, only with etcd, also from its
// variable.
func TestParseConfigHealthElectionTTL(t *testing.T) {
	noEnv := func(string) string { return "" }
	etcd := []string{"-etcd-endpoints", "http://127.0.0.1:2379"}
	c, err := ParseConfig(append(etcd, "-health-election-ttl", "3s"), noEnv, io.Discard)
	if err != nil || c.HealthElectionTTL != 3*time.Second {
		t.Fatalf("3s: %v, %v", c.HealthElectionTTL, err)
	}
	c, err = ParseConfig(etcd, func(k string) string { return map[string]string{"REGISTRAR_HEALTH_ELECTION_TTL": "7s"}[k] }, io.Discard)
	if err != nil || c.HealthElectionTTL != 7*time.Second {
		t.Fatalf("from the environment: %v, %v", c.HealthElectionTTL, err)
	}
	if c, err = ParseConfig(nil, noEnv, io.Discard); err != nil || c.HealthElectionTTL != DefaultHealthElectionTTL {
		t.Fatalf("default: %v, %v", c.HealthElectionTTL, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{append(etcd, "-health-election-ttl", "1s"), "-health-election-ttl: 1s is not whole seconds from 2s to 60s"},
		{append(etcd, "-health-election-ttl", "2500ms"), "-health-election-ttl: 2.5s is not whole seconds"},
		{append(etcd, "-health-election-ttl", "2m"), "-health-election-ttl: 2m0s is not"},
		{[]string{"-health-election-ttl", "5s"}, "-health-election-ttl is set but -etcd-endpoints is not"},
	} {
		if _, err := ParseConfig(tc.args, noEnv, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
}
