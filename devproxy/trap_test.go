package devproxy

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testkit/bin"
	"switchyard/internal/testkit/wait"
)

type answer struct {
	status int
	body   string
}

func (a answer) errorCode() string {
	var v struct{ Error string }
	json.Unmarshal([]byte(a.body), &v)
	return v.Error
}

func get(t testing.TB, url string) answer {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b)}
}

// TestReliabilityTrappingRouterIsReplaced: a router VM that traps answers 503 for the
// request that killed it, and the dev proxy replaces it, so a later request is served
// by a fresh VM. The real filter never traps on purpose; testdata/trapguest traps on
// a path ending in /trap and otherwise answers how many requests its VM has served.
func TestReliabilityTrappingRouterIsReplaced(t *testing.T) {
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotModified) // the trap guest's sync root polls nothing
	}))
	t.Cleanup(reg.Close)
	p, err := New(t.Context(), Config{
		Wasm:      bin.Guest(t, "testdata/trapguest"),
		Envoy:     repoEnvoy(t),
		Registrar: []string{reg.URL},
		Workers:   1, // one router VM: every request goes to the same slot
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)

	for want := 1; want <= 2; want++ {
		if got := get(t, srv.URL+"/sys/ok"); got.status != 200 || got.body != `{"served":`+strconv.Itoa(want)+`}` {
			t.Fatalf("request %d before the trap: %d %q", want, got.status, got.body)
		}
	}
	got := get(t, srv.URL+"/sys/trap")
	if got.status != 503 || got.errorCode() != CodeFilterUnavailable {
		t.Fatalf("the trapping request got %d %q, want 503 filter_unavailable", got.status, got.body)
	}
	if !strings.Contains(got.body, "trap requested") {
		t.Errorf("the 503 does not carry the VM's panic text: %q", got.body)
	}
	// While the slot is being refilled requests get 503 at once; then a fresh VM
	// (its count starts again at 1) serves them.
	wait.Eventually(t, 5*time.Second, func() string {
		if g := get(t, srv.URL+"/sys/ok"); g.status != 200 || g.body != `{"served":1}` {
			return fmt.Sprintf("after the trap: %d %q, want 200 from a fresh VM", g.status, g.body)
		}
		return ""
	})
	if !p.Ready() {
		t.Errorf("the dev proxy is not ready after replacing the VM")
	}
}
