package proc

import (
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// registrarArgs start the real registrar on a free loopback port with its own data.
func registrarArgs(t *testing.T) []string {
	return []string{"-listen", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "servers.json")}
}

// status GETs url and returns the status code, or fails the test.
func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestStartReportsAddressAndOutput(t *testing.T) {
	p := Start(t, "registrar", registrarArgs(t)...)
	if !strings.HasPrefix(p.Addr(), "127.0.0.1:") || strings.HasSuffix(p.Addr(), ":0") {
		t.Fatalf("Addr() = %q, want the port the registrar chose on 127.0.0.1", p.Addr())
	}
	if p.URL() != "http://"+p.Addr() {
		t.Errorf("URL() = %q, want http://%s", p.URL(), p.Addr())
	}
	if got := status(t, p.URL()+"/healthz"); got != 200 {
		t.Errorf("GET /healthz: %d, want 200", got)
	}
	if !strings.Contains(p.Output(), "msg=listening addr="+p.Addr()) {
		t.Errorf("Output() lacks the listening line:\n%s", p.Output())
	}
}

func TestStopIsSIGTERMAndReportsExit(t *testing.T) {
	p := Start(t, "registrar", registrarArgs(t)...)
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop() = %v, want nil (the registrar exits 0 on SIGTERM)\n%s", err, p.Output())
	}
	select {
	case <-p.Exited():
	default:
		t.Fatal("Exited() is not closed after Stop returned")
	}
	if err := p.Stop(); err != nil {
		t.Errorf("a second Stop() = %v, want the same nil", err)
	}
}

func TestKillEndsAtOnceAndStopReportsIt(t *testing.T) {
	p := Start(t, "registrar", registrarArgs(t)...)
	var wg sync.WaitGroup
	var err error
	wg.Go(func() { err = p.Kill() }) // Kill is safe off the test goroutine
	wg.Wait()
	if err != nil {
		t.Fatalf("Kill() = %v", err)
	}
	if err := p.Stop(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Stop() after Kill = %v, want the kill reported", err)
	}
}

func TestRestartKeepsAddressArgsAndOutput(t *testing.T) {
	cfg := Config{Args: registrarArgs(t), Env: []string{"REGISTRAR_TOKEN=restart-secret"}}
	p := StartConfig(t, "registrar", cfg)
	addr, pid := p.Addr(), p.Pid()
	p.Restart()
	if p.Addr() != addr {
		t.Errorf("after Restart, Addr() = %q, want the same %q", p.Addr(), addr)
	}
	if p.Pid() == pid {
		t.Errorf("after Restart, Pid() is still %d: no new process", pid)
	}
	if got := status(t, p.URL()+"/api/servers"); got != 401 {
		t.Errorf("after Restart, /api/servers without the token: %d, want 401 (Env kept)", got)
	}
	if n := strings.Count(p.Output(), "msg=listening"); n != 2 {
		t.Errorf("Output() has %d listening lines, want one per run:\n%s", n, p.Output())
	}
	if cfg.Args[1] != "127.0.0.1:0" {
		t.Errorf("Restart edited the caller's Args: %q", cfg.Args)
	}
}

// fatalTB records a test failure instead of failing the real test, so the ways Start
// fails can themselves be tested. Fatal ends the goroutine, as testing's does.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fatalTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

func TestStartFailsWhenTheBinaryExitsFirst(t *testing.T) {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(f, "registrar", "-allow-cidr", "10.0.0.0/99")
	}()
	<-done
	for _, want := range []string{"registrar exited", "exit status 2", "-allow-cidr"} {
		if !strings.Contains(f.msg, want) {
			t.Errorf("failure message lacks %q:\n%s", want, f.msg)
		}
	}
}

func TestRun(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		code int
		want string
	}{
		{"exit 0 with output", Config{Args: []string{"-help"}}, 0, "-import FILE"},
		{"exit code passed on", Config{Args: []string{"serve"}}, 2, "unexpected argument"},
		{"Env reaches the binary", Config{Env: []string{"REGISTRAR_TOKEN=a", "REGISTRAR_TOKEN_FILE=/nonexistent"}}, 2, "REGISTRAR_TOKEN_FILE, not both"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := Run(t, "registrar", c.cfg)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, c.code, c.want, out)
			}
		})
	}
}

func TestConfigEnviron(t *testing.T) {
	t.Setenv("TESTBIN_KEEP", "1")
	t.Setenv("TESTBIN_DROP_A", "1")
	cfg := Config{Clear: []string{"TESTBIN_DROP_"}, Env: []string{"TESTBIN_DROP_B=set"}}
	env := cfg.environ()
	for _, want := range []string{"TESTBIN_KEEP=1", "TESTBIN_DROP_B=set"} {
		if !slices.Contains(env, want) {
			t.Errorf("environment lacks %s", want)
		}
	}
	if slices.Contains(env, "TESTBIN_DROP_A=1") {
		t.Errorf("a cleared variable was passed on")
	}
}
