package web_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"switchyard/internal/registrarapi"
	"switchyard/internal/testkit/proc"
)

// A server's health check on the page, against the real registrar checking real
// targets: two HTTP servers on loopback, one healthy, one answering 503. The page
// sets the path on add and edit, shows the check and each target's health, and no
// write of the page drops the check.

// healthServer is an HTTP server on 127.0.0.1 answering GET /healthz with status.
func healthServer(t *testing.T, status int) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
	}))
	t.Cleanup(s.Close)
	return s.Listener.Addr().(*net.TCPAddr).String()
}

// healthOf is the server's health check and its targets' health as the API shows them.
func (r *registrar) healthOf(t *testing.T, host string) (*registrarapi.HealthCheck, map[string]string) {
	t.Helper()
	_, res := r.call(t, http.MethodGet, "/api/servers/"+host, nil)
	if res.Server == nil {
		t.Fatalf("GET /api/servers/%s: %+v", host, res)
	}
	health := map[string]string{}
	for _, tg := range res.Server.Targets {
		health[tg.Address] = tg.Health
	}
	return res.Server.HealthCheck, health
}

func TestPageHealthCheck(t *testing.T) {
	up, failing := healthServer(t, http.StatusOK), healthServer(t, http.StatusServiceUnavailable)
	r := &registrar{URL: proc.StartRegistrar(t, "-data", filepath.Join(t.TempDir(), "servers.json"),
		"-allow-cidr", "127.0.0.0/8").URL()}
	browser := startBrowser(t)
	// add fills the add form with a server of the healthy target and submits it.
	add := func(p *page, host, path string) {
		for sel, text := range map[string]string{"#host": host, "#ipAddress": up, "#serviceName": "logs", "#healthPath": path} {
			p.typeInto(sel, text)
		}
		p.click("#save")
	}
	cases := []pageCase{
		{"a health check path given on add is the server's check", func(t *testing.T, r *registrar, p *page) {
			add(p, "hc-add", "/healthz")
			p.waitFor("hc-add in the list", exists(rowSel("hc-add")))
			if hc, _ := r.healthOf(t, "hc-add"); hc == nil || hc.Path != "/healthz" {
				t.Errorf("the API has health check %+v, want path /healthz", hc)
			}
		}},
		{"a bad path shows the API's error by the field", func(t *testing.T, r *registrar, p *page) {
			add(p, "hc-bad", "healthz")
			refused(t, r, p, "healthPath-error", "healthCheck.path: ", "hc-bad")
		}},
		{"the check and the targets' health show, and the switch and edits keep the check", func(t *testing.T, r *registrar, p *page) {
			r.registerBody(t, "hc-1", map[string]any{"host": "hc-1", "serviceName": "logs",
				"targets":     []map[string]any{{"address": up}, {"address": failing, "state": "draining"}},
				"healthCheck": map[string]any{"path": "/healthz", "interval": "100ms", "healthyThreshold": 1, "unhealthyThreshold": 1}})
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				if _, h := r.healthOf(t, "hc-1"); h[failing] == "down" {
					break
				} else if time.Now().After(deadline) {
					t.Fatalf("the failing target is not marked down after 5 s: %v", h)
				}
			}
			p.openTargets("hc-1")
			if got := p.text(rowSel("hc-1") + ` td[data-label="Address"] li[data-address="` + failing + `"]`); !strings.Contains(got, "down") {
				t.Errorf("the list shows the failing target as %q", got)
			}
			if got := p.text(rowSel("hc-1") + ` td[data-label="Address"] li[data-address="` + up + `"]`); strings.Contains(got, "down") {
				t.Errorf("the list shows the healthy target as %q", got)
			}
			for addr, want := range map[string]string{up: "up", failing: "down"} {
				if got := eval[string](p, `document.querySelector(`+jsString(targetSel("hc-1", addr))+`).dataset.health`); got != want {
					t.Errorf("the panel shows %s as %q, want %q", addr, got, want)
				}
			}
			if got := p.text(panelSel("hc-1") + " .check-line"); !strings.Contains(got, "GET /healthz") || !strings.Contains(got, "every 100ms") {
				t.Errorf("the panel's health check line reads %q", got)
			}
			p.shot(artifactDir(t), "page-health-panel.png", panelSel("hc-1"))
			want := registrarapi.HealthCheck{Path: "/healthz", Interval: "100ms", Timeout: "100ms", HealthyThreshold: 1, UnhealthyThreshold: 1}
			if hc, _ := r.healthOf(t, "hc-1"); hc == nil || *hc != want {
				t.Fatalf("health check as registered: %+v, want %+v (the test's expectation is off)", hc, want)
			}

			p.click(panelSel("hc-1") + " .switch-button")
			p.waitFor("the switch's answer", `document.querySelector("#messages .msg.ok")?.textContent.includes("Switched hc-1")`)
			if hc, _ := r.healthOf(t, "hc-1"); hc == nil || *hc != want {
				t.Errorf("after the blue/green switch the health check is %+v, want %+v", hc, want)
			}

			p.edit("hc-1")
			if got := eval[string](p, `document.getElementById("healthPath").value`); got != "/healthz" {
				t.Errorf("the edit form's health check path holds %q", got)
			}
			p.replace("#serviceName", "shop\n")
			p.waitFor("the new service in the list", `document.querySelector(`+jsString(rowSel("hc-1"))+`).textContent.includes("shop")`)
			if hc, _ := r.healthOf(t, "hc-1"); hc == nil || *hc != want {
				t.Errorf("after editing the service the health check is %+v, want %+v", hc, want)
			}

			p.edit("hc-1")
			p.replace("#healthPath", "/ready\n")
			p.waitFor("the form back to adding", `!document.getElementById("host").readOnly`)
			want.Path = "/ready"
			if hc, _ := r.healthOf(t, "hc-1"); hc == nil || *hc != want {
				t.Errorf("after changing the path the health check is %+v, want %+v (the other settings kept)", hc, want)
			}

			p.edit("hc-1")
			p.do(chromedp.Evaluate[chromedp.Void](`document.getElementById("healthPath").value = ""`))
			p.click("#save")
			p.waitFor("the form back to adding", `!document.getElementById("host").readOnly`)
			hc, health := r.healthOf(t, "hc-1")
			if hc != nil {
				t.Errorf("after emptying the path the health check is %+v, want none", hc)
			}
			if health[failing] != "up" {
				t.Errorf("without a health check the failing target is %q, want up", health[failing])
			}
		}},
	}
	runCases(t, r, browser, cases)
}
