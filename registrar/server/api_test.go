package server

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

// Every refused registration is a 400 (or 413) in the result shape whose message
// names the field at fault, and changes nothing: not the revision, not the file.
func TestRegisterRefusals(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	long := strings.Repeat("a", 101)
	cases := []struct {
		name, body string
		code       int
		want       string // must appear in the error
	}{
		{"empty body", "", 400, "empty"},
		{"blank body", "  \n", 400, "empty"},
		{"not JSON", "host=web-1", 400, "invalid JSON"},
		{"truncated JSON", `{"host": "web-1"`, 400, "invalid JSON"},
		{"array", `[]`, 400, "JSON object"},
		{"trailing data", regBody("web-1", "10.1.2.3", "logs") + "{}", 400, "after the object"},
		{"invalid UTF-8", "{\"host\": \"w\xffb\", \"ipAddress\": \"10.1.2.3\", \"serviceName\": \"logs\"}", 400, "UTF-8"},
		{"missing host", `{"ipAddress": "10.1.2.3", "serviceName": "logs"}`, 400, "missing field(s): host"},
		{"missing every field", `{}`, 400, "host, ipAddress, serviceName"},
		{"unknown field", `{"host": "web-1", "ipAddress": "10.1.2.3", "serviceName": "logs", "port": "80"}`, 400, `"port" is not known`},
		{"field in other case", `{"Host": "web-1", "ipAddress": "10.1.2.3", "serviceName": "logs"}`, 400, `"Host" is not known`},
		{"duplicate key", `{"host": "web-1", "host": "web-2", "ipAddress": "10.1.2.3", "serviceName": "logs"}`, 400, `"host" appears more than once`},
		{"number value", `{"host": "web-1", "ipAddress": 10, "serviceName": "logs"}`, 400, `"ipAddress" must be a JSON string`},
		{"null value", `{"host": null, "ipAddress": "10.1.2.3", "serviceName": "logs"}`, 400, `"host" must be a JSON string`},
		{"host 101 characters", regBody(long, "10.1.2.3", "logs"), 400, "host:"},
		{"host empty", regBody("", "10.1.2.3", "logs"), 400, "host:"},
		{"host with CR LF", regBody("web-1\r\nX-Evil: 1", "10.1.2.3", "logs"), 400, "host:"},
		{"host with space", regBody("web 1", "10.1.2.3", "logs"), 400, "host:"},
		{"host reserved", regBody("register", "10.1.2.3", "logs"), 400, "host:"},
		{"host dot-dot", regBody("..", "10.1.2.3", "logs"), 400, "host:"},
		{"host dot", regBody(".", "10.1.2.3", "logs"), 400, "host:"},
		{"address 101 characters", regBody("web-1", strings.Repeat("a", 97)+".com", "logs"), 400, "ipAddress:"},
		{"address with CR LF", regBody("web-1", "10.1.2.3\r\n", "logs"), 400, "ipAddress:"},
		{"address bad IPv4", regBody("web-1", "10.1.2.300", "logs"), 400, "ipAddress:"},
		{"address quoted once", regBody("web-1", "999.1.1.1", "logs"), 400, "ipAddress: '999.1.1.1' is not a valid IPv4 address"},
		{"address port with leading zero", regBody("web-1", "10.1.2.3:080", "logs"), 400, "ipAddress: port '080'"},
		{"address hex IPv4 as a name", regBody("web-1", "0x7f000001", "logs"), 400, "ipAddress: '0x7f000001' is not a valid IPv4 address"},
		{"address port 0", regBody("web-1", "10.1.2.3:0", "logs"), 400, "ipAddress:"},
		{"address port 65536", regBody("web-1", "10.1.2.3:65536", "logs"), 400, "ipAddress:"},
		{"address bare IPv6", regBody("web-1", "2001:db8::1", "logs"), 400, "ipAddress:"},
		{"address with path", regBody("web-1", "10.1.2.3/admin", "logs"), 400, "ipAddress:"},
		{"address loopback", regBody("web-1", "127.0.0.1:8080", "logs"), 400, "ipAddress: refused"},
		{"address cloud metadata", regBody("web-1", "169.254.169.254", "logs"), 400, "ipAddress: refused"},
		{"address mapped loopback", regBody("web-1", "[::ffff:127.0.0.1]:80", "logs"), 400, "ipAddress: refused"},
		{"address localhost", regBody("web-1", "localhost:8080", "logs"), 400, "ipAddress: refused"},
		{"address localhost.localdomain", regBody("web-1", "localhost.localdomain", "logs"), 400, "ipAddress: refused"},
		{"address AWS IMDS IPv6", regBody("web-1", "[fd00:ec2::254]", "logs"), 400, "ipAddress: refused"},
		{"address Alibaba metadata", regBody("web-1", "100.100.100.200", "logs"), 400, "ipAddress: refused"},
		{"address mapped Alibaba metadata", regBody("web-1", "[::ffff:100.100.100.200]", "logs"), 400, "ipAddress: refused"},
		{"address GCP metadata name", regBody("web-1", "metadata.google.internal", "logs"), 400, "ipAddress: refused"},
		{"address IPv4-compatible loopback", regBody("web-1", "[::127.0.0.1]", "logs"), 400, "ipAddress: refused"},
		{"address NAT64 loopback", regBody("web-1", "[64:ff9b::7f00:1]", "logs"), 400, "ipAddress: refused"},
		{"address 6to4 loopback", regBody("web-1", "[2002:7f00:1::]", "logs"), 400, "ipAddress: refused"},
		{"serviceName 101 characters", regBody("web-1", "10.1.2.3", long), 400, "serviceName:"},
		{"serviceName 101 Hangul", regBody("web-1", "10.1.2.3", strings.Repeat("로", 101)), 400, "serviceName:"},
		{"serviceName empty", regBody("web-1", "10.1.2.3", ""), 400, "serviceName:"},
		{"serviceName blank", regBody("web-1", "10.1.2.3", "   "), 400, "serviceName:"},
		{"serviceName with LF", regBody("web-1", "10.1.2.3", "logs\nforged line"), 400, "serviceName:"},
		{"serviceName with NUL", regBody("web-1", "10.1.2.3", "lo\x00gs"), 400, "serviceName:"},
		{"serviceName with RLO", regBody("web-1", "10.1.2.3", "billing \u202e10.0.0.1 :kcatta"), 400, "serviceName: must not contain invisible format characters"},
		{"serviceName with zero-width space", regBody("web-1", "10.1.2.3", "lo\u200bgs"), 400, "serviceName:"},
		{"serviceName with BOM", regBody("web-1", "10.1.2.3", "\ufefflogs"), 400, "serviceName:"},
		{"serviceName with lone surrogate", `{"host": "web-1", "ipAddress": "10.1.2.3", "serviceName": "lo\ud800gs"}`, 400, "serviceName: must not contain U+FFFD"},
		{"serviceName with DEL", regBody("web-1", "10.1.2.3", "lo\x7fgs"), 400, "serviceName:"},
		{"body over 64 KiB", regBody("web-1", "10.1.2.3", strings.Repeat("x", 65<<10)), 413, "64 KiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := call(t, "POST", reg.URL+"/api/servers/register", c.body, "Content-Type", "application/json")
			if r.Code != c.code {
				t.Fatalf("status %d, want %d: %s", r.Code, c.code, r.Body)
			}
			res := r.Result(t)
			if res.Success || !strings.Contains(res.Error, c.want) {
				t.Fatalf("error %q, want success=false and mention of %q", res.Error, c.want)
			}
		})
	}
	if rev := reg.Store.Current().Revision(); rev != 0 {
		t.Errorf("refused writes moved the revision to %d", rev)
	}
	if _, err := os.Stat(reg.Data); !os.IsNotExist(err) {
		t.Errorf("refused writes created the data file (stat: %v)", err)
	}
}

// The limits are inclusive: exactly 100 characters is accepted.
func TestRegisterAccepts(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	cases := []struct{ name, host, addr, service string }{
		{"host of 100 characters", strings.Repeat("h", 100), "10.1.2.3", "logs"},
		{"serviceName of 100 characters", "svc-100", "10.1.2.3", strings.Repeat("s", 100)},
		{"serviceName of 100 Hangul", "svc-ko", "10.1.2.3", strings.Repeat("로", 100)},
		{"address of 100 characters", "addr-100", strings.Repeat("a", 61) + "." + strings.Repeat("b", 38), "logs"},
		{"IPv4 with port", "v4", "10.1.2.3:8080", "logs"},
		{"IPv6 with port", "v6", "[2001:db8::1]:8080", "logs"},
		{"DNS name", "dns", "payment-pod-xyz", "logs"},
		{"seed-like private IP", "user-service", "192.168.1.100", "logs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := register(t, reg.URL, c.host, c.addr, c.service)
			if res.Server == nil || res.Server.Name != c.host || res.Server.Target != c.addr || res.Server.Service != c.service {
				t.Fatalf("stored %+v", res.Server)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	cases := []struct{ method, path, allow string }{
		{"GET", "/api/servers/register", "POST"},
		{"PUT", "/api/servers/register", "POST"},
		{"DELETE", "/api/servers/register", "POST"},
		{"POST", "/api/servers", "GET"},
		{"POST", "/api/servers/web-1", "GET, PUT, DELETE"},
		{"POST", "/v1/routes", "GET"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			r := call(t, c.method, reg.URL+c.path, "")
			if r.Code != http.StatusMethodNotAllowed || r.Header.Get("Allow") != c.allow {
				t.Fatalf("status %d Allow %q, want 405 Allow %q", r.Code, r.Header.Get("Allow"), c.allow)
			}
			if res := r.Result(t); res.Success || res.Error == "" {
				t.Fatalf("body %s", r.Body)
			}
		})
	}
}

// The CRUD life of one table, step by step: each step's status and revision.
func TestServersLifecycle(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	steps := []struct {
		name, method, path, body string
		code                     int
		rev                      uint64 // revision in the answer (0: not checked)
		changed                  *bool
	}{
		{"register", "POST", "/api/servers/register", regBody("web-2", "10.0.0.2:8080", "logs"), 200, 1, ptr(true)},
		{"same again changes nothing", "POST", "/api/servers/register", regBody("web-2", "10.0.0.2:8080", "logs"), 200, 1, ptr(false)},
		{"new address", "POST", "/api/servers/register", regBody("web-2", "10.0.0.22:8080", "logs"), 200, 2, ptr(true)},
		{"new serviceName", "POST", "/api/servers/register", regBody("web-2", "10.0.0.22:8080", "api"), 200, 3, ptr(true)},
		{"put creates", "PUT", "/api/servers/web-1", `{"ipAddress": "10.0.0.1", "serviceName": "logs"}`, 200, 4, ptr(true)},
		{"put replaces", "PUT", "/api/servers/web-1", `{"ipAddress": "10.0.0.11", "serviceName": "logs"}`, 200, 5, ptr(true)},
		{"put with the same host in the body", "PUT", "/api/servers/web-1", `{"host": "web-1", "ipAddress": "10.0.0.11", "serviceName": "logs"}`, 200, 5, ptr(false)},
		{"put with another host in the body", "PUT", "/api/servers/web-1", `{"host": "web-9", "ipAddress": "10.0.0.11", "serviceName": "logs"}`, 400, 0, nil},
		{"put missing serviceName", "PUT", "/api/servers/web-1", `{"ipAddress": "10.0.0.11"}`, 400, 0, nil},
		{"put denied address", "PUT", "/api/servers/web-1", `{"ipAddress": "[fe80::1]", "serviceName": "logs"}`, 400, 0, nil},
		{"put invalid name in path", "PUT", "/api/servers/web%201", `{"ipAddress": "10.0.0.1", "serviceName": "logs"}`, 400, 0, nil},
		{"get", "GET", "/api/servers/web-1", "", 200, 5, nil},
		{"get absent", "GET", "/api/servers/nope", "", 404, 0, nil},
		{"get is case-sensitive", "GET", "/api/servers/WEB-1", "", 404, 0, nil},
		{"delete", "DELETE", "/api/servers/web-2", "", 200, 6, ptr(true)},
		{"delete absent", "DELETE", "/api/servers/web-2", "", 404, 0, nil},
		{"unknown endpoint", "GET", "/api/nothing", "", 404, 0, nil},
	}
	for _, s := range steps {
		r := call(t, s.method, reg.URL+s.path, s.body)
		if r.Code != s.code {
			t.Fatalf("%s: status %d, want %d: %s", s.name, r.Code, s.code, r.Body)
		}
		res := r.Result(t)
		if res.Success != (s.code == 200) {
			t.Fatalf("%s: success=%v: %s", s.name, res.Success, r.Body)
		}
		if s.code != 200 && res.Error == "" {
			t.Fatalf("%s: no error message", s.name)
		}
		if s.rev != 0 && (res.Revision == nil || *res.Revision != s.rev) {
			t.Fatalf("%s: revision %v, want %d: %s", s.name, res.Revision, s.rev, r.Body)
		}
		if s.changed != nil && (res.Changed == nil || *res.Changed != *s.changed) {
			t.Fatalf("%s: changed %v, want %v", s.name, res.Changed, *s.changed)
		}
	}

	register(t, reg.URL, "a-first", "10.0.0.3", "logs")
	list := call(t, "GET", reg.URL+"/api/servers", "").Result(t)
	if list.Servers == nil {
		t.Fatalf("GET /api/servers has no \"servers\": %+v", list)
	}
	var hosts []string
	for _, s := range *list.Servers {
		hosts = append(hosts, s.Name)
		if s.UpdatedAt.IsZero() {
			t.Errorf("%s has no updatedAt", s.Name)
		}
	}
	if strings.Join(hosts, ",") != "a-first,web-1" || list.Revision == nil || *list.Revision != 7 {
		t.Fatalf("list = %v at revision %v, want a-first,web-1 at 7", hosts, list.Revision)
	}
}

// Before any write the list is empty (not null) at revision 0.
func TestListEmpty(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	r := call(t, "GET", reg.URL+"/api/servers", "")
	if !strings.Contains(string(r.Body), `"servers":[]`) || !strings.Contains(string(r.Body), `"revision":0`) {
		t.Fatalf("empty list = %s", r.Body)
	}
}

func TestOpenEndpoints(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	cases := []struct{ path, want string }{
		{"/healthz", `"status":"ok"`},
		{"/", "<html"},
	}
	for _, c := range cases {
		r := call(t, "GET", reg.URL+c.path, "")
		if r.Code != 200 || !strings.Contains(string(r.Body), c.want) {
			t.Errorf("GET %s: %d %.200s", c.path, r.Code, r.Body)
		}
	}
}

func ptr[T any](v T) *T { return &v }
