package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"switchyard/internal/testkit/apitest"
	"switchyard/internal/testkit/envoycheck"
	"switchyard/internal/testkit/etcdtest"
	"switchyard/internal/testkit/wait"
)

// proxyView is one entry of GET /api/proxies (and of a write's "pending").
type proxyView struct {
	Proxy           string  `json:"proxy"`
	Cluster         string  `json:"cluster"`
	Version         string  `json:"version"`
	State           string  `json:"state"`
	Revision        uint64  `json:"revision"`
	RevisionsBehind uint64  `json:"revisionsBehind"`
	BehindSeconds   float64 `json:"behindSeconds"`
	Replica         string  `json:"replica"`
}

// proxiesNow reads GET /api/proxies: the registrar's revision and its proxies by id.
func proxiesNow(t testing.TB, regURL string) (uint64, map[string]proxyView) {
	t.Helper()
	var doc struct {
		Result struct {
			Success  bool        `json:"success"`
			Revision uint64      `json:"revision"`
			Proxies  []proxyView `json:"proxies"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(get(t, regURL+"/api/proxies").body), &doc); err != nil || !doc.Result.Success {
		t.Fatalf("GET /api/proxies: %v %+v", err, doc)
	}
	byID := map[string]proxyView{}
	for _, p := range doc.Result.Proxies {
		byID[p.Proxy] = p
	}
	return doc.Result.Revision, byID
}

// appliedAnswer is a write's answer with wait=applied.
type appliedAnswer struct {
	Success   bool        `json:"success"`
	Error     string      `json:"error"`
	Revision  uint64      `json:"revision"`
	Applied   *bool       `json:"applied"`
	AppliedBy int         `json:"appliedBy"`
	Pending   []proxyView `json:"pending"`
}

// registerAndWait registers name → target with wait=applied&timeout=timeout and
// returns the answer and how long it took.
func registerAndWait(t testing.TB, regURL, name, target, timeout string) (appliedAnswer, time.Duration) {
	t.Helper()
	start := time.Now()
	a := writeAndWait(t, "POST", regURL+"/api/servers/register?wait=applied&timeout="+timeout, apitest.RegBody(name, target, "e2e"))
	return a, time.Since(start)
}

// writeAndWait sends a write whose URL asks wait=applied and returns its answer; it
// fails the test unless the answer is a 200 that succeeded and says whether it applied.
func writeAndWait(t testing.TB, method, url, body string) appliedAnswer {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var doc struct{ Result appliedAnswer }
	if err := json.Unmarshal(b, &doc); err != nil || resp.StatusCode != 200 || !doc.Result.Success || doc.Result.Applied == nil {
		t.Fatalf("%s %s %s: %d %s", method, url, body, resp.StatusCode, b)
	}
	return doc.Result
}

// configWithIdentity writes a copy of the repo's envoy.yaml whose plugin configuration
// names the proxy (proxy_id) and polls with a short wait, so "gone" (two waits + 5 s
// without a poll) comes within seconds.
func configWithIdentity(t testing.TB, proxyID string, waitSeconds int) string {
	t.Helper()
	return envoycheck.WriteRepoConfig(t,
		`"strip_header": false,`, fmt.Sprintf(`"strip_header": false, "proxy_id": %q,`, proxyID),
		`"wait_seconds": 30,`, fmt.Sprintf(`"wait_seconds": %d,`, waitSeconds))
}

// Two dev proxies with the real filter sync through the real registrar under their own
// proxy_id; the registrar lists both, a write with wait=applied answers once both
// routed it, and a frozen proxy (SIGSTOP) shows behind, is named by a write's
// timeout, then turns gone and stops holding writes up.
//
// The registry lives in the registrar's server, above the store: the same test runs
// over the embedded store and over a registrar replica on a real etcd.
func TestProxyStatus(t *testing.T) {
	t.Run("embedded store", func(t *testing.T) {
		proxyStatus(t, startRegistrar(t, "-replica-name", "reg-e2e"))
	})
	t.Run("etcd store", func(t *testing.T) {
		proxyStatus(t, startEtcdRegistrar(t, etcdtest.Start(t, 1), "-replica-name", "reg-e2e"))
	})
}

func proxyStatus(t *testing.T, reg *process) {
	up := upstream(t, "alpha")
	const waitSeconds = 2 // seconds: gone after 2×2+5 = 9 s of silence
	pa := startDevproxy(t, reg.url(), "-config", configWithIdentity(t, "edge-a", waitSeconds))
	pb := startDevproxy(t, reg.url(), "-config", configWithIdentity(t, "edge-b", waitSeconds))

	wait.Eventually(t, 30*time.Second, func() string { // two proxies start and take their first table
		rev, ps := proxiesNow(t, reg.url())
		for _, id := range []string{"edge-a", "edge-b"} {
			if p := ps[id]; p.State != "current" || p.Revision != rev || p.Replica != "reg-e2e" || p.Version == "" {
				return fmt.Sprintf("%s: %+v (registrar at %d)", id, p, rev)
			}
		}
		return ""
	})

	// Live on both when the answer comes: the route works through each at once.
	res, took := registerAndWait(t, reg.url(), "web-1", up, "20s")
	if !*res.Applied || res.AppliedBy != 2 || len(res.Pending) != 0 {
		t.Fatalf("wait=applied with both proxies syncing: %+v after %v", res, took)
	}
	for _, px := range []*process{pa, pb} {
		if got := get(t, px.url()+"/sys/logs", "X-Server-Name", "web-1"); got.status != 200 || !strings.HasPrefix(got.body, "alpha GET /sys/logs") {
			t.Errorf("right after the applied answer, %s routes web-1 as %d %q", px.url(), got.status, got.body)
		}
	}
	t.Logf("wait=applied answered after %v with both proxies applied", took)

	// Freeze edge-b: it stops polling and applying.
	if err := syscall.Kill(pb.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pb.Pid(), syscall.SIGCONT) }) // before its stop (cleanups run last first)

	res, took = registerAndWait(t, reg.url(), "web-2", up, "1s")
	if *res.Applied || res.AppliedBy != 1 || len(res.Pending) != 1 || res.Pending[0].Proxy != "edge-b" || res.Pending[0].RevisionsBehind != 1 {
		t.Fatalf("wait=applied with edge-b frozen: %+v after %v, want edge-b pending, 1 behind", res, took)
	}
	if took < time.Second {
		t.Errorf("answered after %v, before the 1 s timeout", took)
	}
	rev, ps := proxiesNow(t, reg.url())
	if p := ps["edge-b"]; p.State != "behind" || p.RevisionsBehind != 1 || rev != res.Revision {
		t.Errorf("frozen edge-b: %+v (registrar at %d), want behind by 1", p, rev)
	}
	if p := ps["edge-a"]; p.State != "current" {
		t.Errorf("edge-a: %+v, want current", p)
	}

	// Silent past two waits and the grace: gone, and writes no longer wait for it.
	wait.Eventually(t, 30*time.Second, func() string {
		_, ps := proxiesNow(t, reg.url())
		if p := ps["edge-b"]; p.State != "gone" {
			return fmt.Sprintf("edge-b: %+v", p)
		}
		return ""
	})
	res, took = registerAndWait(t, reg.url(), "web-3", up, "20s")
	if !*res.Applied || res.AppliedBy != 1 {
		t.Errorf("wait=applied with edge-b gone: %+v after %v, want applied by edge-a alone", res, took)
	}

	// Thawed, edge-b catches up and is current again.
	if err := syscall.Kill(pb.Pid(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	wait.Eventually(t, propagation, func() string {
		rev, ps := proxiesNow(t, reg.url())
		if p := ps["edge-b"]; p.State != "current" || p.Revision != rev {
			return fmt.Sprintf("edge-b after SIGCONT: %+v (registrar at %d)", p, rev)
		}
		return ""
	})
	if got := get(t, pb.url()+"/sys/x", "X-Server-Name", "web-3"); got.status != 200 {
		t.Errorf("thawed edge-b routes web-3 as %d %q", got.status, got.body)
	}
}

// A dev proxy started with -node-id (Envoy's --service-node) is listed in
// /api/proxies under that id and its -node-cluster, read by the filter from the
// host's xds.node properties; a plugin configuration's proxy_id still wins over it.
func TestProxyNodeID(t *testing.T) {
	reg := startRegistrar(t)
	startDevproxy(t, reg.url(), "-node-id", "edge-node", "-node-cluster", "edges")
	startDevproxy(t, reg.url(), "-config", configWithIdentity(t, "edge-conf", 30), "-node-id", "edge-ignored", "-node-cluster", "edges")

	wait.Eventually(t, 30*time.Second, func() string {
		_, ps := proxiesNow(t, reg.url())
		for _, id := range []string{"edge-node", "edge-conf"} {
			if p := ps[id]; p.State != "current" || p.Cluster != "edges" {
				return fmt.Sprintf("%s: %+v in %v", id, p, ps)
			}
		}
		if len(ps) != 2 {
			return fmt.Sprintf("want exactly edge-node and edge-conf, got %v", ps)
		}
		return ""
	})
}
