package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"switchyard/internal/testkit/bin"
)

// How long a binary may take to report its address, to end after SIGTERM (or
// SIGKILL) and, for Run, to finish. Generous: a loaded machine starts binaries slowly,
// and a test only waits this long when something is already wrong.
const (
	ListenWithin = 30 * time.Second
	StopWithin   = 10 * time.Second
	RunWithin    = 20 * time.Second
)

// Config says how to run one of the project's binaries.
type Config struct {
	// Args is the command line. A "-listen ADDR" pair in it is what Restart reuses.
	Args []string
	// Env holds KEY=VALUE settings added on top of the test process's environment.
	Env []string
	// Clear lists name prefixes ("REGISTRAR_") of the test process's variables that
	// are not passed on, so the settings of whoever runs the tests cannot change what
	// a test runs; Env is applied after.
	Clear []string
}

func (c Config) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		keep := true
		for _, prefix := range c.Clear {
			if strings.HasPrefix(kv, prefix) {
				keep = false
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return append(env, c.Env...)
}

// Proc is one of the project's binaries (registrar, devproxy) running for a test.
// Start returns once it has logged the address it listens on; it is stopped when the
// test ends. Methods other than Kill and Output are for the test's own goroutine.
type Proc struct {
	t    testing.TB
	name string
	cfg  Config
	addr string

	mu  sync.Mutex
	out bytes.Buffer // stdout and stderr of every run, in order
	run *Child       // the current run
}

// listening matches the binaries' "listening" log line, as slog text
// (msg=listening addr=127.0.0.1:1234) or JSON ("msg":"listening",...,"addr":"..."),
// and not the dev proxy's "admin listening" line.
var listening = regexp.MustCompile(`(?:msg=listening|"msg":"listening").*?(?:addr=|"addr":")([^\s",]+)`)

// Start runs the named binary ("registrar", "devproxy") with args and waits, at most
// ListenWithin, for the address in its "listening" log line; the binary must be told
// to listen on 127.0.0.1:0 (or another loopback address). The test fails when it
// exits or stays silent first.
func Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	return StartConfig(t, name, Config{Args: args})
}

// StartRegistrar runs the built registrar on 127.0.0.1:0 with args, without the
// REGISTRAR_* settings of whoever runs the tests: only the test's flags configure it
// (a stray REGISTRAR_TOKEN or REGISTRAR_ALLOW_CIDR would change what it accepts).
func StartRegistrar(t testing.TB, args ...string) *Proc {
	t.Helper()
	return StartConfig(t, "registrar", Config{
		Args:  append([]string{"-listen", "127.0.0.1:0"}, args...),
		Clear: []string{"REGISTRAR_"},
	})
}

// StartConfig is Start with an environment as well as arguments.
func StartConfig(t testing.TB, name string, cfg Config) *Proc {
	t.Helper()
	cfg.Args = append([]string(nil), cfg.Args...) // Restart edits them
	p := &Proc{t: t, name: name, cfg: cfg}
	p.start()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s output (the end):\n%s", name, Tail(p.Output(), 16<<10))
		}
	})
	return p
}

func (p *Proc) start() {
	p.t.Helper()
	cmd := exec.Command(bin.Path(p.t, p.name), p.cfg.Args...)
	cmd.Env = p.cfg.environ()
	found := make(chan string, 1)
	r, err := StartCapture(cmd, &p.mu, &p.out, func(line string) {
		if m := listening.FindStringSubmatch(line); m != nil {
			select {
			case found <- m[1]:
			default:
			}
		}
	})
	if err != nil {
		p.t.Fatalf("starting %s: %v", p.name, err)
	}
	p.mu.Lock()
	p.run = r
	p.mu.Unlock()

	select {
	case p.addr = <-found:
	case <-r.Exited():
		p.t.Fatalf("%s exited (%v) before it logged a \"listening\" line with addr=...; output:\n%s", p.name, r.Err(), p.Output())
	case <-time.After(ListenWithin):
		p.Kill()
		p.t.Fatalf("%s logged no \"listening\" line with addr=... within %v; output:\n%s", p.name, ListenWithin, p.Output())
	}
}

// Addr is the address the current run listens on ("127.0.0.1:PORT").
func (p *Proc) Addr() string { return p.addr }

// URL is "http://" + Addr().
func (p *Proc) URL() string { return "http://" + p.addr }

// Output is everything the binary has written to stdout and stderr so far, over all
// its runs. Safe to call from any goroutine.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Pid is the operating system's id of the current run.
func (p *Proc) Pid() int { return p.current().Cmd.Process.Pid }

// Exited is closed once the current run has exited and all its output is in Output.
func (p *Proc) Exited() <-chan struct{} { return p.current().Exited() }

func (p *Proc) current() *Child {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.run
}

// Stop ends the current run as an operator would: SIGTERM, then SIGKILL if it is
// still running StopWithin later. It returns nil when the process exited with status
// 0, else how it exited, or an error saying it had to be killed. Stopping a process
// that has already exited only reports how it exited.
func (p *Proc) Stop() error {
	r := p.current()
	select {
	case <-r.Exited():
		return r.Err()
	default:
	}
	if err := r.Cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: sending SIGTERM: %v", p.name, err)
	}
	select {
	case <-r.Exited():
		return r.Err()
	case <-time.After(StopWithin):
	}
	if err := p.Kill(); err != nil {
		return err
	}
	return fmt.Errorf("%s did not exit within %v of SIGTERM and was killed", p.name, StopWithin)
}

// Kill ends the current run with SIGKILL, as a crash or the OOM killer would, and
// waits for it to be gone. The error says only that it did not go within
// StopWithin. Safe to call from any goroutine.
func (p *Proc) Kill() error {
	r := p.current()
	r.Cmd.Process.Kill() // an error only means it has exited already
	select {
	case <-r.Exited():
		return nil
	case <-time.After(StopWithin):
		return fmt.Errorf("%s did not exit within %v of SIGKILL", p.name, StopWithin)
	}
}

// Restart stops the current run (Stop; how it ended is not checked) and starts the
// binary again with the same arguments and environment, listening on the same
// address as before, as an operator restarting the service would. The binary must
// have been given its address as "-listen ADDR".
func (p *Proc) Restart() {
	p.t.Helper()
	p.Stop()
	reused := false
	for i, a := range p.cfg.Args {
		if a == "-listen" && i+1 < len(p.cfg.Args) {
			p.cfg.Args[i+1] = p.addr
			reused = true
		}
	}
	if !reused {
		p.t.Fatalf("proc: Restart of %s needs a \"-listen ADDR\" argument to keep the address; args: %q", p.name, p.cfg.Args)
	}
	p.start()
}

// Run runs the named binary to completion (at most RunWithin) and returns its exit
// code and what it wrote to stdout and stderr. A binary that cannot be started or does
// not finish in time fails the test.
func Run(t testing.TB, name string, cfg Config) (code int, output string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), RunWithin)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.Path(t, name), cfg.Args...)
	cmd.Env = cfg.environ()
	cmd.WaitDelay = time.Second // a child left holding the pipes cannot keep Run waiting
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not finish within %v; output:\n%s", name, cfg.Args, RunWithin, out)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("running %s: %v", name, err)
	}
	return 0, string(out)
}

// Tail is the last n bytes of s, cut at a line start.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "...\n" + s
}
