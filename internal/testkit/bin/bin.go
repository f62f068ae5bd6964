// Package bin gives tests the project's real build outputs (bin/filter.wasm,
// bin/registrar and bin/devproxy) and builds the small wasm guests some tests load
// instead of the filter (Guest). Running the binaries is package proc's job.
//
// When SWITCHYARD_BIN is set (the Makefile sets it after `make build`), the outputs are
// taken from that folder as they are. Otherwise each is built once per test process
// into a temporary folder, with the same flags the Makefile uses, so `go test ./...`
// works on its own and never races another package's build.
package bin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Outputs and the package each is built from.
var packages = map[string]string{
	"filter.wasm": "./filter",
	"registrar":   "./registrar",
	"devproxy":    "./cmd/devproxy",
}

// Path returns the path of the named output ("filter.wasm", "registrar", "devproxy"),
// building it first when needed. It fails the test when the build fails.
func Path(t testing.TB, name string) string {
	t.Helper()
	p, err := path(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Read returns the bytes of the named output.
func Read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(Path(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func path(name string) (string, error) {
	pkg, ok := packages[name]
	if !ok {
		return "", fmt.Errorf("bin: unknown output %q", name)
	}
	if dir := os.Getenv("SWITCHYARD_BIN"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("bin: SWITCHYARD_BIN=%s but %s is missing (run make build): %v", dir, name, err)
		}
		return p, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	return buildOnce(name, root, pkg, name, strings.HasSuffix(name, ".wasm"))
}

// A build shared by every caller in this test process that asks for the same key.
type build struct {
	once sync.Once
	path string
	err  error
}

var (
	mu     sync.Mutex
	builds = map[string]*build{}
	tmpDir string
)

// buildOnce builds pkg (run from dir) into the process's temporary folder as file,
// the first time key is asked for, and returns the built path. Different keys build
// at the same time; the same key waits for the one build. wasm builds are wasip1
// c-shared modules, as the Makefile builds filter.wasm.
func buildOnce(key, dir, pkg, file string, wasm bool) (string, error) {
	mu.Lock()
	if tmpDir == "" {
		d, err := os.MkdirTemp("", "switchyard-bin-")
		if err != nil {
			mu.Unlock()
			return "", err
		}
		tmpDir = d
	}
	b, ok := builds[key]
	if !ok {
		b = &build{}
		builds[key] = b
	}
	out := filepath.Join(tmpDir, file)
	mu.Unlock()

	b.once.Do(func() {
		args := []string{"build", "-trimpath", "-o", out}
		env := os.Environ()
		if wasm {
			args = append(args, "-buildmode=c-shared")
			env = append(env, "GOOS=wasip1", "GOARCH=wasm")
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Dir, cmd.Env = dir, env
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("bin: building %s (go %s in %s): %v\n%s", key, strings.Join(cmd.Args[1:], " "), dir, err, msg)
			return
		}
		b.path = out
	})
	return b.path, b.err
}

// ModuleRoot returns the folder holding the project's go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("bin: no go.mod above the working directory")
		}
		dir = parent
	}
}
