package main

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"switchyard/internal/testkit/etcdtest"
)

// The -etcd-* flags as an operator gives them: through the environment, refused in
// combinations that cannot work, and a clear exit when etcd cannot be reached.
func TestBinaryEtcdSettings(t *testing.T) {
	c := etcdtest.Start(t, 1)
	p := startBinary(t, []string{"REGISTRAR_ETCD_ENDPOINTS=" + c.EndpointList(), "REGISTRAR_ETCD_PREFIX=/bin-test/", "REGISTRAR_ALLOW_CIDR=10.0.0.0/8"})
	if !strings.Contains(p.Output(), "etcd="+c.EndpointList()) || !strings.Contains(p.Output(), "prefix=/bin-test/") {
		t.Fatalf("listening line does not name etcd and the prefix:\n%s", p.Output())
	}
	register(t, p.URL(), "web-1", "10.1.2.3:8080", "logs")
	cli := c.Client(t)
	r, err := cli.Get(t.Context(), "/bin-test/web-1")
	if err != nil || len(r.Kvs) != 1 || !strings.Contains(string(r.Kvs[0].Value), `"ipAddress":"10.1.2.3:8080"`) {
		t.Fatalf("etcd has %v (%v) under /bin-test/web-1, want the server as JSON", r, err)
	}
	stop(t, p)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-etcd-endpoints", c.EndpointList(), "-data", "x.json"}, "not both"},
		{[]string{"-etcd-prefix", "/x/"}, "-etcd-endpoints is not"},
		{[]string{"-etcd-endpoints", "127.0.0.1:2379"}, "must be a URL"},
	} {
		code, out := runBinary(t, nil, tc.args...)
		if code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("%q: exit %d, output %q; want 2 and %q", tc.args, code, out, tc.want)
		}
	}

	// Nothing listens there: the registrar cannot read the table and says so.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("http://%s", l.Addr())
	l.Close()
	code, out := runBinary(t, nil, "-listen", "127.0.0.1:0", "-etcd-endpoints", dead, "-etcd-dial-timeout", "1s")
	if code != 1 || !strings.Contains(out, "etcd "+dead) {
		t.Fatalf("with etcd unreachable: exit %d, output %q; want 1 and an error naming etcd %s", code, out, dead)
	}
}
