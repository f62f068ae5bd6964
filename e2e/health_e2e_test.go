package e2e

import (
	"fmt"
	"testing"
	"time"

	"switchyard/internal/testkit/apitest"
	"switchyard/internal/testkit/wait"
)

// The registrar's active health check through the real dev proxy and filter: a target
// whose health path fails is skipped by the proxy within 1 s of the failed check (the
// registrar writes it down, the proxy's long-poll brings the v3 set with the flag x),
// and used again within 1 s of the check that finds it back.
func TestActiveHealthCheckSkipsDownTarget(t *testing.T) {
	reg := startRegistrar(t)
	a, b := apitest.NewHealthTarget(t, "127.0.0.1"), apitest.NewHealthTarget(t, "127.0.0.1")
	write(t, "POST", reg.url()+"/api/servers/register", fmt.Sprintf(`{"host": "web", "serviceName": "e2e",
		"targets": [{"address": %q}, {"address": %q}],
		"healthCheck": {"path": "/healthz", "interval": "200ms", "timeout": "200ms", "unhealthyThreshold": 2, "healthyThreshold": 1}}`, a.Addr, b.Addr))
	px := startDevproxy(t, reg.url())

	// served sends n requests and counts them per target (a local reply of the proxy
	// counts under its status and error code).
	served := func(n int) map[string]int {
		got := map[string]int{}
		for range n {
			r := get(t, px.url()+"/sys/x", "X-Server-Name", "web")
			if r.status != 200 {
				r.body = fmt.Sprintf("%d %s", r.status, r.errorCode())
			}
			got[r.body]++
		}
		return got
	}
	wait.Eventually(t, propagation, func() string {
		if got := served(4); got[a.Addr] == 0 || got[b.Addr] == 0 {
			return fmt.Sprintf("both targets up: requests went %v", got)
		}
		return ""
	})

	// checkedThen sets a's health answer to status, waits for the first check
	// answered so, and sends 20 requests 1 s after it.
	checkedThen := func(status int) map[string]int {
		a.Status.Store(int32(status))
		wait.Eventually(t, 5*time.Second, func() string {
			if a.FirstAnswered(status).IsZero() {
				return fmt.Sprintf("no check answered %d yet", status)
			}
			return ""
		})
		time.Sleep(time.Until(a.FirstAnswered(status).Add(time.Second)))
		return served(20)
	}
	if got := checkedThen(500); got[a.Addr] != 0 || got[b.Addr] != 20 {
		t.Fatalf("1 s after the failed check, 20 requests went %v; want all to %s (the target up)", got, b.Addr)
	}
	// Equal weights: each worker VM alternates, so 20 requests split 10/10 when the
	// dev proxy's workers take 10 each; allow one worker taking an odd share.
	if got := checkedThen(204); got[a.Addr] < 9 || got[b.Addr] < 9 || got[a.Addr]+got[b.Addr] != 20 {
		t.Fatalf("1 s after the passing check, 20 requests went %v; want about 10 to each (equal weights)", got)
	}
}
