package registrarapi

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"switchyard/internal/testkit/bin"
)

// The document passes a second linter, independent of the validator the registrar's
// tests use: Redocly CLI's recommended rules, each an error (redocly.yaml). The linter
// is installed by `make test-deps` (scripts/test-deps, pinned); without it this test
// fails, saying so.
func TestOpenAPILint(t *testing.T) {
	root, err := bin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	redocly := filepath.Join(root, ".cache", "redocly", "node_modules", ".bin", "redocly")
	if _, err := os.Stat(redocly); err != nil {
		t.Fatalf("the OpenAPI linter is not installed (%v): run make test-deps (scripts/test-deps installs the pinned @redocly/cli into .cache/redocly)", err)
	}
	dir := filepath.Join(root, "internal", "registrarapi")
	cmd := exec.Command(redocly, "lint", "--config", filepath.Join(dir, "redocly.yaml"), filepath.Join(dir, "openapi.yaml"))
	// No telemetry or update check: the tests reach nothing but loopback.
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_UPDATE_NOTIFIER=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redocly lint openapi.yaml: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "valid") {
		t.Fatalf("redocly lint said nothing of the document:\n%s", out)
	}
}
