package envoycheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"

	"switchyard/internal/envoyconfig"
	"switchyard/internal/testkit/bin"
)

// RepoConfigPath is the path of the project's envoy.yaml, the file the dev proxy serves
// and these rules guard.
func RepoConfigPath(t testing.TB) string {
	t.Helper()
	root, err := bin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "envoy.yaml")
}

// RepoConfigText returns envoy.yaml with each old→new replacement applied in turn.
// Every old string must occur exactly once, so a case can never silently test the
// unchanged file after envoy.yaml is edited.
func RepoConfigText(t testing.TB, replace ...string) string {
	t.Helper()
	path := RepoConfigPath(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(replace)%2 != 0 {
		t.Fatalf("replacements come in old, new pairs; got %d strings", len(replace))
	}
	text := string(b)
	for i := 0; i < len(replace); i += 2 {
		old, new := replace[i], replace[i+1]
		if n := strings.Count(text, old); n != 1 {
			t.Fatalf("%q occurs %d times in %s, want once; update the test to the file", old, n, path)
		}
		text = strings.Replace(text, old, new, 1)
	}
	return text
}

// RepoConfig is RepoConfigText loaded; a text that does not load fails the test.
func RepoConfig(t testing.TB, replace ...string) *bootstrapv3.Bootstrap {
	t.Helper()
	bs, err := envoyconfig.Parse([]byte(RepoConfigText(t, replace...)))
	if err != nil {
		t.Fatalf("the (changed) envoy.yaml does not load: %v", err)
	}
	return bs
}

// WriteRepoConfig writes RepoConfigText to a file of its own in a test folder and
// returns its path, for a binary's -config.
func WriteRepoConfig(t testing.TB, replace ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "envoy.yaml")
	if err := os.WriteFile(path, []byte(RepoConfigText(t, replace...)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
