package main

// Tests against the built registrar binary (internal/testkit/proc): flags, environment, restart,
// signals and the one-shot import, as an operator would run it.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testkit/proc"
	"switchyard/registrar/store"
)

// startBinary runs the built registrar (proc.Start) with args plus -listen
// 127.0.0.1:0 and env on top of the test's environment, without the REGISTRAR_*
// settings of whoever runs the tests. It is stopped when the test ends.
func startBinary(t *testing.T, env []string, args ...string) *proc.Proc {
	t.Helper()
	return proc.StartConfig(t, "registrar", proc.Config{
		Args:  append([]string{"-listen", "127.0.0.1:0"}, args...),
		Env:   env,
		Clear: []string{"REGISTRAR_"},
	})
}

// stop sends SIGTERM and requires exit status 0 within 10 s.
func stop(t *testing.T, p *proc.Proc) {
	t.Helper()
	if err := p.Stop(); err != nil {
		t.Fatalf("registrar after SIGTERM: %v\n%s", err, p.Output())
	}
}

// runBinary runs the registrar to completion and returns its exit code and output.
func runBinary(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	return proc.Run(t, "registrar", proc.Config{Args: args, Env: env, Clear: []string{"REGISTRAR_"}})
}

func TestBinaryRestartKeepsDataAndCleansTemps(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "state", "servers.json")
	p := startBinary(t, nil, "-data", data)
	register(t, p.URL(), "web-1", "10.1.2.3:8080", "logs")
	register(t, p.URL(), "web-2", "10.1.2.4:8080", "logs")
	stop(t, p)

	stale := filepath.Join(dir, "state", "servers.json.tmp-4242")
	if err := os.WriteFile(stale, []byte(`{"revision": 99, "ser`), 0o600); err != nil {
		t.Fatal(err)
	}
	p = startBinary(t, nil, "-data", data)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file survived the start (stat: %v)", err)
	}
	table := call(t, "GET", p.URL()+"/v1/routes", "").Routes(t)
	if table.Revision != 2 || table.Routes["web-1"] != "10.1.2.3:8080" || table.Routes["web-2"] != "10.1.2.4:8080" {
		t.Fatalf("after restart: %+v", table)
	}
	if res := register(t, p.URL(), "web-3", "10.1.2.5", "logs"); *res.Revision != 3 {
		t.Fatalf("revision after restart went to %d, want 3", *res.Revision)
	}
	stop(t, p)
}

// The token can come from each of its sources; without it /api/ and /v1/ answer 401.
func TestBinaryTokenSources(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("  file-secret\n"), 0o600)
	cases := []struct {
		name  string
		env   []string
		args  []string
		token string
	}{
		{"-token", nil, []string{"-token", "flag-secret"}, "flag-secret"},
		{"-token-file (trimmed)", nil, []string{"-token-file", tokenFile}, "file-secret"},
		{"REGISTRAR_TOKEN", []string{"REGISTRAR_TOKEN=env-secret"}, nil, "env-secret"},
		{"flag wins over env", []string{"REGISTRAR_TOKEN=env-secret"}, []string{"-token-file", tokenFile}, "file-secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"-data", filepath.Join(t.TempDir(), "servers.json")}, c.args...)
			p := startBinary(t, c.env, args...)
			if strings.Contains(p.Output(), "no token configured") {
				t.Errorf("warned about open writes although a token is set:\n%s", p.Output())
			}
			for _, path := range []string{"/api/servers", "/v1/routes"} {
				if r := call(t, "GET", p.URL()+path, ""); r.Code != 401 {
					t.Errorf("GET %s without token: %d", path, r.Code)
				}
				if r := call(t, "GET", p.URL()+path, "", "Authorization", "Bearer wrong"); r.Code != 401 {
					t.Errorf("GET %s with a wrong token: %d", path, r.Code)
				}
				if r := call(t, "GET", p.URL()+path, "", "Authorization", "Bearer "+c.token); r.Code != 200 {
					t.Errorf("GET %s with the token: %d", path, r.Code)
				}
			}
			stop(t, p)
		})
	}
}

// Settings come from the environment when no flag is given.
func TestBinaryEnvironment(t *testing.T) {
	data := filepath.Join(t.TempDir(), "env", "servers.json")
	p := startBinary(t, []string{"REGISTRAR_DATA=" + data, "REGISTRAR_ALLOW_CIDR=127.0.0.0/8"})
	if !strings.Contains(p.Output(), "no token configured") {
		t.Errorf("no warning about open writes:\n%s", p.Output())
	}
	register(t, p.URL(), "local", "127.0.0.1:9001", "dev") // allowed by REGISTRAR_ALLOW_CIDR
	if r := call(t, "POST", p.URL()+"/api/servers/register", regBody("far", "10.1.2.3", "dev")); r.Code != 400 {
		t.Errorf("target outside REGISTRAR_ALLOW_CIDR: %d %s", r.Code, r.Body)
	}
	if _, err := os.Stat(data); err != nil {
		t.Errorf("REGISTRAR_DATA not used: %v", err)
	}
	if !strings.Contains(p.Output(), "msg=audit action=set host=local") {
		t.Errorf("no audit line for the write:\n%s", p.Output())
	}
	stop(t, p)
}

// SIGTERM answers a waiting long-poll at once and the process exits 0.
func TestBinarySIGTERMReleasesLongPoll(t *testing.T) {
	p := startBinary(t, nil, "-data", filepath.Join(t.TempDir(), "servers.json"))
	got := make(chan reply, 1)
	go func() { got <- call(t, "GET", p.URL()+"/v1/routes?after=0&wait=60", "") }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(string(call(t, "GET", p.URL()+"/metrics", "").Body), "registrar_long_poll_watchers 1") {
		if time.Now().After(deadline) {
			t.Fatal("the long-poll never started waiting")
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	stop(t, p)
	select {
	case r := <-got:
		if r.Code != 304 {
			t.Errorf("released long-poll answered %d, want 304", r.Code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the long-poll was not answered at shutdown")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %v", took)
	}
}

func TestBinaryImport(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "servers.json")
	seed := filepath.Join(dir, "server_mapping.json")
	os.WriteFile(seed, []byte(`{"user-service": "192.168.1.100", "payment-service": "payment-pod-xyz"}`), 0o600)
	if code, out := runBinary(t, nil, "-data", data, "-import", seed); code != 0 || !strings.Contains(out, "msg=imported") {
		t.Fatalf("import exit %d:\n%s", code, out)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"x": "169.254.169.254"}`), 0o600)
	if code, out := runBinary(t, nil, "-data", data, "-import", bad); code != 1 || !strings.Contains(out, `entry \"x\"`) {
		t.Fatalf("bad import exit %d:\n%s", code, out)
	}
	p := startBinary(t, nil, "-data", data)
	table := call(t, "GET", p.URL()+"/v1/routes", "").Routes(t)
	if table.Revision != 1 || len(table.Routes) != 2 || table.Routes["payment-service"] != "payment-pod-xyz" {
		t.Fatalf("after import: %+v", table)
	}
	stop(t, p)
}

func TestBinaryCommandLine(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"help", []string{"-help"}, 0, "-import FILE is a one-shot migration"},
		{"bad allow-cidr", []string{"-allow-cidr", "10.0.0.0/99"}, 2, "-allow-cidr"},
		{"both token flags", []string{"-token", "a", "-token-file", "b"}, 2, "not both"},
		{"empty token", []string{"-token", ""}, 2, "token is empty"},
		{"missing token file", []string{"-token-file", "/nonexistent/token"}, 2, "cannot read the token file"},
		{"stray argument", []string{"serve"}, 2, "unexpected argument"},
		{"bad dns-targets", []string{"-dns-targets", "maybe"}, 2, "-dns-targets"},
		{"bad dns suffix", []string{"-allow-dns-suffix", "10.0.0.1"}, 2, "-allow-dns-suffix"},
		{"dns deny with suffixes", []string{"-dns-targets", "deny", "-allow-dns-suffix", ".internal.example.com"}, 2, "give one or the other"},
		{"allow-cidr in NAT64 form", []string{"-allow-cidr", "64:ff9b::/96"}, 2, "list that IPv4 range instead"},
		{"bad allow-host", []string{"-allow-host", "http://reg.example"}, 2, "-allow-host"},
		{"bad allow-origin", []string{"-allow-origin", "https://cms.example.com/page"}, 2, "-allow-origin"},
		{"port taken", []string{"-listen", taken.Addr().String(), "-data", filepath.Join(t.TempDir(), "servers.json")}, 1, "cannot listen"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := runBinary(t, nil, c.args...)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, c.code, c.want, out)
			}
		})
	}
}

// A second registrar on the same -data is refused, naming the first one's pid.
func TestBinarySecondInstanceRefused(t *testing.T) {
	data := filepath.Join(t.TempDir(), "servers.json")
	p := startBinary(t, nil, "-data", data)
	register(t, p.URL(), "web-1", "10.1.2.3", "logs")
	code, out := runBinary(t, nil, "-listen", "127.0.0.1:0", "-data", data)
	if want := fmt.Sprintf("in use by another registrar (pid %d", p.Pid()); code != 1 || !strings.Contains(out, want) {
		t.Fatalf("second instance: exit %d, want 1 with %q:\n%s", code, want, out)
	}
	stop(t, p)
}

// With the lock file removed while the first registrar runs, a second one on the same
// -data is still refused (the first holds a lock on its log segment), and the first
// one's writes all survive its restart.
func TestBinarySecondInstanceRefusedWithoutLockFile(t *testing.T) {
	data := filepath.Join(t.TempDir(), "servers.json")
	p := startBinary(t, nil, "-data", data)
	register(t, p.URL(), "web-1", "10.1.2.3", "logs")
	if err := os.Remove(data + ".lock"); err != nil {
		t.Fatal(err)
	}
	code, out := runBinary(t, nil, "-listen", "127.0.0.1:0", "-data", data)
	if want := "in use by another registrar: its log"; code != 1 || !strings.Contains(out, want) {
		t.Fatalf("second instance without the lock file: exit %d, want 1 with %q:\n%s", code, want, out)
	}
	register(t, p.URL(), "web-2", "10.1.2.4", "logs")
	stop(t, p)
	rev, servers, err := store.ReadData(data)
	if err != nil || rev != 2 || len(servers) != 2 {
		t.Fatalf("after the restart: revision %d, %d servers, %v; want both writes", rev, len(servers), err)
	}
}

// Data deleted after it existed stops the start, loudly, unless -init (or
// REGISTRAR_INIT) asks for a new, empty history; that one gets a new lineage and a
// revision that still grows.
func TestBinaryMissingDataNeedsInit(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "servers.json")
	p := startBinary(t, nil, "-data", data)
	register(t, p.URL(), "web-1", "10.1.2.3", "logs")
	register(t, p.URL(), "web-2", "10.1.2.4", "logs")
	var before struct{ Lineage string }
	json.Unmarshal(call(t, "GET", p.URL()+"/v1/routes?v=2", "").Body, &before)
	stop(t, p)
	files, _ := filepath.Glob(data + "*")
	for _, f := range files {
		if !strings.HasSuffix(f, ".lock") {
			os.Remove(f)
		}
	}
	code, out := runBinary(t, nil, "-listen", "127.0.0.1:0", "-data", data)
	if code != 1 || !strings.Contains(out, "is missing") || !strings.Contains(out, "-init") {
		t.Fatalf("start without the data: exit %d, want 1 pointing to -init:\n%s", code, out)
	}
	p = startBinary(t, []string{"REGISTRAR_INIT=1"}, "-data", data)
	if !strings.Contains(p.Output(), "STARTING A NEW, EMPTY HISTORY") {
		t.Errorf("-init did not say so loudly:\n%s", p.Output())
	}
	var after struct {
		Lineage  string
		Revision uint64
		Routes   map[string]string
	}
	json.Unmarshal(call(t, "GET", p.URL()+"/v1/routes?v=2", "").Body, &after)
	if after.Lineage == before.Lineage || after.Revision < 2 || len(after.Routes) != 0 {
		t.Fatalf("after -init: %+v (lineage before %s)", after, before.Lineage)
	}
	stop(t, p)
}

// The target policy's settings, from flags and environment, as an operator runs it:
// a wide -allow-cidr does not open the special ranges, an IPv4-mapped range is read
// as IPv4, and DNS names follow -dns-targets and -allow-dns-suffix.
func TestBinaryTargetPolicy(t *testing.T) {
	try := func(p *proc.Proc, addr string) int {
		t.Helper()
		return call(t, "POST", p.URL()+"/api/servers/register", regBody("web-1", addr, "logs")).Code
	}
	cases := []struct {
		name string
		env  []string
		args []string
		want map[string]int // target -> status
	}{
		{"0.0.0.0/0 and ::/0 do not name special ranges", nil, []string{"-allow-cidr", "0.0.0.0/0,::/0"}, map[string]int{
			"10.1.2.3": 200, "[2001:db8::1]": 200, "127.0.0.1": 400, "[::1]": 400, "169.254.169.254": 400,
			"100.100.100.200": 400, "[fd00:ec2::254]": 400, "[64:ff9b::7f00:1]": 400,
		}},
		{"an IPv4-mapped range is its IPv4 range", []string{"REGISTRAR_ALLOW_CIDR=::ffff:10.0.0.0/104"}, nil, map[string]int{
			"10.1.2.3": 200, "[::ffff:10.1.2.3]": 200, "11.1.2.3": 400,
		}},
		{"DNS names denied", nil, []string{"-dns-targets", "deny"}, map[string]int{
			"10.1.2.3": 200, "db.internal.example.com": 400, "localhost": 400,
		}},
		{"DNS suffixes from the environment", []string{"REGISTRAR_ALLOW_DNS_SUFFIX=.internal.example.com"}, nil, map[string]int{
			"db.internal.example.com": 200, "db.example.com": 400, "10.1.2.3": 200,
		}},
		{"DNS names by default, but not loopback or metadata names", nil, nil, map[string]int{
			"db.example.com": 200, "ip6-localhost": 400, "localhost.localdomain": 400, "metadata.google.internal": 400,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := startBinary(t, c.env, append([]string{"-data", filepath.Join(t.TempDir(), "servers.json")}, c.args...)...)
			for addr, want := range c.want {
				if got := try(p, addr); got != want {
					t.Errorf("register %s: %d, want %d", addr, got, want)
				}
			}
		})
	}
}

// -allow-host and -allow-origin (flag or environment) widen the browser guards as an
// operator would: a listed name is answered without a token, a listed origin's page
// may write; others are still refused.
func TestBinaryBrowserGuards(t *testing.T) {
	p := startBinary(t, []string{"REGISTRAR_ALLOW_HOST=reg.example"}, "-data", filepath.Join(t.TempDir(), "servers.json"),
		"-allow-origin", "https://cms.example.com")
	send := func(method, path, host, origin, body string) int {
		t.Helper()
		req, err := http.NewRequest(method, p.URL()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	own := strings.TrimPrefix(p.URL(), "http://")
	for _, c := range []struct {
		name, method, host, origin string
		want                       int
	}{
		{"listed host", "GET", "reg.example", "", 200},
		{"listed host in capitals, with port", "GET", "REG.example:9000", "", 200},
		{"unlisted host", "GET", "other.example", "", 421},
		{"listed origin writes", "POST", own, "https://cms.example.com", 200},
		{"unlisted origin", "POST", own, "https://other.example", 403},
	} {
		body := ""
		if c.method == "POST" {
			body = regBody("web-1", "10.1.2.3", "logs")
		}
		if got := send(c.method, "/api/servers"+map[bool]string{true: "/register"}[c.method == "POST"], c.host, c.origin, body); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// Under systemd (Type=notify) the registrar sends READY=1 to $NOTIFY_SOCKET once it
// serves: /healthz answers when the datagram has come.
func TestBinaryNotifiesSystemdWhenReady(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := startBinary(t, []string{"NOTIFY_SOCKET=" + sock}, "-data", filepath.Join(t.TempDir(), "servers.json"))
	ln.SetReadDeadline(time.Now().Add(proc.ListenWithin))
	buf := make([]byte, 256)
	n, err := ln.Read(buf)
	if err != nil {
		t.Fatalf("no datagram on NOTIFY_SOCKET: %v\n%s", err, p.Output())
	}
	if got := string(buf[:n]); got != "READY=1" {
		t.Fatalf("NOTIFY_SOCKET got %q, want READY=1", got)
	}
	res, err := http.Get(p.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/healthz after READY=1: %s", res.Status)
	}
	stop(t, p)
}

// A NOTIFY_SOCKET nobody listens on is logged, and the registrar serves anyway.
func TestBinaryServesWhenNotifySocketIsGone(t *testing.T) {
	p := startBinary(t, []string{"NOTIFY_SOCKET=" + filepath.Join(t.TempDir(), "none")}, "-data", filepath.Join(t.TempDir(), "servers.json"))
	if !strings.Contains(p.Output(), "cannot tell systemd") {
		t.Errorf("no warning about the missing notify socket:\n%s", p.Output())
	}
	stop(t, p)
}
