// Package testbin gives tests the project's real build outputs: bin/filter.wasm,
// bin/registrar and bin/devproxy.
//
// When SWITCHYARD_BIN is set (the Makefile sets it after `make build`), the files are
// taken from that folder as they are. Otherwise each is built once per test process
// into a temporary folder, with the same flags the Makefile uses, so `go test ./...`
// works on its own and never races another package's build.
package testbin

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
	"devproxy":    "./e2e/cmd/devproxy",
}

var (
	mu     sync.Mutex
	built  = map[string]string{}
	tmpDir string
)

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
		return "", fmt.Errorf("testbin: unknown output %q", name)
	}
	if dir := os.Getenv("SWITCHYARD_BIN"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("testbin: SWITCHYARD_BIN=%s but %s is missing (run make build): %v", dir, name, err)
		}
		return p, nil
	}
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[name]; ok {
		return p, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	if tmpDir == "" {
		if tmpDir, err = os.MkdirTemp("", "switchyard-bin-"); err != nil {
			return "", err
		}
	}
	out := filepath.Join(tmpDir, name)
	args := []string{"build", "-trimpath", "-o", out}
	env := os.Environ()
	if strings.HasSuffix(name, ".wasm") {
		args = append(args, "-buildmode=c-shared")
		env = append(env, "GOOS=wasip1", "GOARCH=wasm")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir, cmd.Env = root, env
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testbin: building %s: %v\n%s", name, err, msg)
	}
	built[name] = out
	return out, nil
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
			return "", fmt.Errorf("testbin: no go.mod above the working directory")
		}
		dir = parent
	}
}
