package e2e

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"switchyard/internal/testkit/bin"
	"switchyard/internal/testkit/wait"
)

// TestFilterReportsBuildVersion: a filter.wasm linked with
// -X switchyard/filter/polling.BuildVersion=V (what `make build` passes, VERSION from
// git describe) sends version=V in its polls, through the real dev proxy to the real
// registrar. The module is built here with that flag, the way the Makefile builds it,
// so the test does not depend on what the checked-out tree describes itself as.
func TestFilterReportsBuildVersion(t *testing.T) {
	want := "v0.0.0-versiontest." + strconv.Itoa(os.Getpid())
	wasm := buildFilterWithVersion(t, want)

	reg := startRegistrar(t)
	// A recording reverse proxy between the dev proxy and the registrar: the filter's
	// polls pass through it unchanged, their query parameters kept.
	target, err := url.Parse(reg.url())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var versions []string
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0) // the long poll cut at the end of the test
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/routes" {
			mu.Lock()
			versions = append(versions, r.URL.Query().Get("version"))
			mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	up := upstream(t, "alpha")
	register(t, reg.url(), "versioned", up)
	px := startDevproxy(t, front.URL, "-wasm", wasm)
	wait.Eventually(t, propagation, func() string {
		if g := get(t, px.url()+"/sys/v", "X-Server-Name", "versioned"); g.status != 200 {
			return "the dev proxy with the versioned filter does not route yet: " + strconv.Itoa(g.status) + " " + g.body
		}
		return ""
	})
	mu.Lock()
	defer mu.Unlock()
	if len(versions) == 0 {
		t.Fatal("the table reached the dev proxy but no poll passed the recording proxy")
	}
	for i, v := range versions {
		if v != want {
			t.Errorf("poll %d sent version=%q, want %q (the -X value it was linked with)", i+1, v, want)
		}
	}
}

// buildFilterWithVersion builds ./filter as the Makefile does, with BuildVersion set
// to version, and returns the module's path.
func buildFilterWithVersion(t *testing.T, version string) string {
	t.Helper()
	root, err := bin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "filter.wasm")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildmode=c-shared",
		"-ldflags", "-X switchyard/filter/polling.BuildVersion="+version, "-o", out, "./filter")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the filter with a version (go %v): %v\n%s", cmd.Args[1:], err, msg)
	}
	return out
}
