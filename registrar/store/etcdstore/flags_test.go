package etcdstore

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, args []string, env map[string]string) (Options, bool, error) {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := BindFlags(fs, func(k string) string { return env[k] })
	if err := fs.Parse(args); err != nil {
		return Options{}, false, err
	}
	return f.Options()
}

func TestFlags(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte(" s3cret\n"), 0o600)

	o, ok, err := parse(t, nil, nil)
	if err != nil || ok {
		t.Fatalf("no flags: ok %v err %v, want the embedded store", ok, err)
	}
	o, ok, err = parse(t, []string{"-etcd-endpoints", "http://127.0.0.1:1, http://127.0.0.1:2", "-etcd-username", "u", "-etcd-password-file", pwFile}, nil)
	if err != nil || !ok || len(o.Endpoints) != 2 || o.Prefix != DefaultPrefix || o.Password != "s3cret" || o.DialTimeout != 5*time.Second || o.ElectionTTL != DefaultElectionTTL {
		t.Fatalf("flags: %+v %v %v", o, ok, err)
	}
	o, ok, err = parse(t, []string{"-etcd-prefix", "/x/"}, map[string]string{"REGISTRAR_ETCD_ENDPOINTS": "https://e:2379", "REGISTRAR_ETCD_DIAL_TIMEOUT": "2s", "REGISTRAR_ETCD_PREFIX": "/env/", "REGISTRAR_ETCD_ELECTION_TTL": "7s"})
	if err != nil || !ok || o.Prefix != "/x/" || o.DialTimeout != 2*time.Second || o.Endpoints[0] != "https://e:2379" || o.ElectionTTL != 7*time.Second {
		t.Fatalf("env + flag: %+v %v %v", o, ok, err)
	}
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-etcd-prefix", "/x/"}, nil, "-etcd-endpoints is not"},
		{[]string{"-etcd-endpoints", "127.0.0.1:2379"}, nil, "must be a URL"},
		{[]string{"-etcd-endpoints", "http://e", "-etcd-prefix", "/x"}, nil, "must end with /"},
		{[]string{"-etcd-endpoints", "http://e", "-etcd-cert", "c"}, nil, "both -etcd-cert and -etcd-key"},
		{[]string{"-etcd-endpoints", "http://e", "-etcd-password", "p"}, nil, "-etcd-username is not"},
		{[]string{"-etcd-endpoints", "http://e", "-etcd-password", "p", "-etcd-password-file", pwFile}, nil, "not both"},
		{[]string{"-etcd-endpoints", "http://e"}, map[string]string{"REGISTRAR_ETCD_DIAL_TIMEOUT": "soon"}, "not a duration"},
		{[]string{"-etcd-endpoints", "http://e", "-etcd-dial-timeout", "0s"}, nil, "must be positive"},
		{[]string{"-etcd-election-ttl", "3s"}, nil, "-etcd-election-ttl is set but -etcd-endpoints is not"},
		{[]string{"-etcd-endpoints", "http://e", "-etcd-election-ttl", "1s"}, nil, "-etcd-election-ttl: 1s is not whole seconds from 2s to 60s"},
		{[]string{"-etcd-endpoints", "http://e", "-etcd-election-ttl", "2500ms"}, nil, "-etcd-election-ttl: 2.5s is not whole seconds"},
		{[]string{"-etcd-endpoints", "http://e", "-etcd-election-ttl", "2m"}, nil, "-etcd-election-ttl: 2m0s is not"},
		{[]string{"-etcd-endpoints", "http://e"}, map[string]string{"REGISTRAR_ETCD_ELECTION_TTL": "soon"}, "REGISTRAR_ETCD_ELECTION_TTL: \"soon\" is not a duration"},
	} {
		if _, _, err := parse(t, c.args, c.env); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %v: err %v, want one saying %q", c.args, c.env, err, c.want)
		}
	}
}

// A password file others may read is refused, naming the file and the chmod to run.
func TestPasswordFileReadableByOthersRefused(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("s3cret\n"), 0o600)
	os.Chmod(pwFile, 0o644)
	args := []string{"-etcd-endpoints", "http://127.0.0.1:1", "-etcd-username", "u", "-etcd-password-file", pwFile}
	if _, _, err := parse(t, args, nil); err == nil || !strings.Contains(err.Error(), "chmod 600 "+pwFile) {
		t.Fatalf("0644 password file: %v, want a refusal naming the chmod", err)
	}
	os.Chmod(pwFile, 0o600)
	if o, _, err := parse(t, args, nil); err != nil || o.Password != "s3cret" {
		t.Fatalf("0600 password file: %q %v", o.Password, err)
	}
}
