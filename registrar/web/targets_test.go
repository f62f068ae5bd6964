package web_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"switchyard/internal/registrarapi"
)

// A server's targets on the page, in a real Chromium against the real registrar
// binary: the panel under a server's row shows each target's weight, state and health
// and changes them through the API's target endpoints; the blue/green switch is one
// write of the whole set. Every case checks what GET /api/servers says afterwards.

// panelSel selects the targets panel (the row under the server's row) of a server.
func panelSel(host string) string {
	return `#servers tr.targets-row[data-targets-of=` + strconv.Quote(host) + `]`
}

// targetSel selects the line of one target in a server's panel.
func targetSel(host, address string) string {
	return panelSel(host) + ` table.targets tbody tr[data-address=` + strconv.Quote(address) + `]`
}

// exists is the JavaScript test that an element matching sel is on the page.
func exists(sel string) string { return `!!document.querySelector(` + jsString(sel) + `)` }

// refreshed clicks Refresh and waits until the list it loads is drawn with host in it
// (so no redraw replaces the row a later click aims at).
func (p *page) refreshed(host string) {
	p.t.Helper()
	p.do(chromedp.Evaluate[chromedp.Void](`document.body.dataset.list = ""`))
	p.click(`#refresh`)
	p.waitFor(host+" in the list", `document.body.dataset.list === "loaded" && `+exists(rowSel(host)))
}

// openTargets shows a listed server's targets panel.
func (p *page) openTargets(host string) {
	p.t.Helper()
	p.refreshed(host)
	p.click(rowSel(host) + " button.targets-toggle")
	p.waitFor("the targets panel of "+host, exists(panelSel(host)))
}

// edit opens a listed server in the form.
func (p *page) edit(host string) {
	p.t.Helper()
	p.refreshed(host)
	p.click(rowSel(host) + " button.edit")
	p.waitFor("the form editing "+host, `document.getElementById("host").readOnly && document.getElementById("host").value === `+jsString(host))
}

// cancelNoActive answers the no-active confirmation with Cancel and gives a write
// wrongly sent anyway the moment to land.
func (p *page) cancelNoActive() {
	p.t.Helper()
	p.click(`#confirm-noactive button[value=cancel]`)
	p.waitFor("the confirmation to close", `!document.getElementById("confirm-noactive").open`)
	p.do(chromedp.Sleep(200 * time.Millisecond))
}

func tg(address string, weight int, state string) registrarapi.Target {
	return registrarapi.Target{Address: address, Weight: weight, State: state}
}

// setOf is a server's target set as "address/weight/state" lines, for comparisons.
func setOf(s apiServer) string {
	var b strings.Builder
	for _, t := range s.Targets {
		b.WriteString(t.Address + "/" + strconv.Itoa(t.Weight) + "/" + t.State + " ")
	}
	return strings.TrimSpace(b.String())
}

func TestPageTargets(t *testing.T) {
	r := startRegistrar(t, "")
	browser := startBrowser(t)
	cases := []pageCase{
		{"a one-target server looks as before and its panel shows the one target", func(t *testing.T, r *registrar, p *page) {
			r.register(t, "one-1", "10.0.2.1:8080", "logs")
			p.refreshed("one-1")
			if got := p.text(rowSel("one-1") + ` td[data-label="Address"]`); got != "10.0.2.1:8080" {
				t.Errorf("the Address cell of a one-address server reads %q, want the address alone", got)
			}
			p.openTargets("one-1")
			if got := eval[string](p, `document.querySelector(`+jsString(rowSel("one-1")+" button.targets-toggle")+`).getAttribute("aria-expanded")`); got != "true" {
				t.Errorf("the open Targets button has aria-expanded=%q", got)
			}
			line := p.text(targetSel("one-1", "10.0.2.1:8080"))
			for _, want := range []string{"10.0.2.1:8080", "active", "up"} {
				if !strings.Contains(line, want) {
					t.Errorf("target line %q lacks %q", line, want)
				}
			}
			if got := eval[string](p, `document.querySelector(`+jsString(targetSel("one-1", "10.0.2.1:8080")+" input.weight")+`).value`); got != "1" {
				t.Errorf("weight field holds %q, want 1", got)
			}
			if p.visible(targetSel("one-1", "10.0.2.1:8080")+" button.remove") || p.visible(panelSel("one-1")+" .switch-button") {
				t.Error("a one-target server offers Remove or the blue/green switch")
			}
		}},
		{"adding a second target, setting weights and draining one, with the keyboard", func(t *testing.T, r *registrar, p *page) {
			r.register(t, "multi-1", "10.0.2.11:8080", "logs")
			p.openTargets("multi-1")
			p.typeInto(panelSel("multi-1")+" input.new-address", "10.0.2.12:8080")
			p.replace(panelSel("multi-1")+" input.new-weight", "10\n") // Enter adds
			p.waitFor("the new target in the panel", exists(targetSel("multi-1", "10.0.2.12:8080")))
			if _, servers := r.servers(t); setOf(servers["multi-1"]) != "10.0.2.11:8080/1/active 10.0.2.12:8080/10/active" {
				t.Errorf("after adding, the API has %q", setOf(servers["multi-1"]))
			}
			if got := eval[string](p, `document.querySelector(`+jsString(panelSel("multi-1")+" input.new-address")+`).value`); got != "" {
				t.Errorf("after adding, the address field still holds %q", got)
			}

			p.replace(targetSel("multi-1", "10.0.2.11:8080")+" input.weight", "90\n") // Enter sets
			p.waitFor("weight 90 drawn", `document.querySelector(`+jsString(targetSel("multi-1", "10.0.2.11:8080")+" input.weight")+`).dataset.drawn === "90"`)
			p.click(targetSel("multi-1", "10.0.2.12:8080") + " button.drain")
			p.waitFor("the drained target", `document.querySelector(`+jsString(targetSel("multi-1", "10.0.2.12:8080"))+`).dataset.state === "draining"`)
			if _, servers := r.servers(t); setOf(servers["multi-1"]) != "10.0.2.11:8080/90/active 10.0.2.12:8080/10/draining" {
				t.Errorf("after weight 90 and a drain, the API has %q", setOf(servers["multi-1"]))
			}
			cellText := p.text(rowSel("multi-1") + ` td[data-label="Address"]`)
			for _, want := range []string{"10.0.2.11:8080", "weight 90", "10.0.2.12:8080", "draining"} {
				if !strings.Contains(cellText, want) {
					t.Errorf("the Address cell %q lacks %q", cellText, want)
				}
			}
			p.click(targetSel("multi-1", "10.0.2.12:8080") + " button.activate")
			p.waitFor("the activated target", `document.querySelector(`+jsString(targetSel("multi-1", "10.0.2.12:8080"))+`).dataset.state === "active"`)
			if _, servers := r.servers(t); setOf(servers["multi-1"]) != "10.0.2.11:8080/90/active 10.0.2.12:8080/10/active" {
				t.Errorf("after activating, the API has %q", setOf(servers["multi-1"]))
			}
		}},
		{"a refused target shows the API's error in the panel and keeps what was typed", func(t *testing.T, r *registrar, p *page) {
			r.register(t, "multi-2", "10.0.2.21:8080", "logs")
			p.openTargets("multi-2")
			p.typeInto(panelSel("multi-2")+" input.new-address", "999.1.1.1\n")
			p.waitFor("the error", `!document.querySelector(`+jsString(panelSel("multi-2")+" .targets-error")+`).hidden`)
			msg := p.text(panelSel("multi-2") + " .targets-error")
			if !strings.Contains(msg, "multi-2") || !strings.Contains(msg, "target.address") || !strings.Contains(msg, "999.1.1.1") {
				t.Errorf("the panel says %q, want the API's message about target.address 999.1.1.1 of multi-2", msg)
			}
			sel := jsString(panelSel("multi-2") + " input.new-address")
			if got := eval[string](p, `document.querySelector(`+sel+`).getAttribute("aria-invalid")`); got != "true" {
				t.Errorf("address field aria-invalid=%q", got)
			}
			if got := eval[string](p, `document.querySelector(`+sel+`).value`); got != "999.1.1.1" {
				t.Errorf("the typed address was lost: %q", got)
			}
			if _, servers := r.servers(t); len(servers["multi-2"].Targets) != 1 {
				t.Errorf("the API has %q", setOf(servers["multi-2"]))
			}
		}},
		{"an empty or out-of-range weight is refused on the page, not sent as 0", func(t *testing.T, r *registrar, p *page) {
			r.registerSet(t, "weight-1", "logs", tg("10.0.2.41:8080", 7, "active"), tg("10.0.2.42:8080", 3, "active"))
			rev, _ := r.servers(t)
			p.openTargets("weight-1")
			sel := targetSel("weight-1", "10.0.2.41:8080") + " input.weight"
			for _, typed := range []string{"", "101"} {
				p.replace(sel, typed+"\n")
				p.waitFor("the error", `!document.querySelector(`+jsString(panelSel("weight-1")+" .targets-error")+`).hidden`)
				if got := p.text(panelSel("weight-1") + " .targets-error"); !strings.Contains(got, "whole number from 0 to 100") {
					t.Errorf("weight %q: the panel says %q", typed, got)
				}
			}
			if now, servers := r.servers(t); now != rev || setOf(servers["weight-1"]) != "10.0.2.41:8080/7/active 10.0.2.42:8080/3/active" {
				t.Errorf("revision %d → %d, set %q", rev, now, setOf(servers["weight-1"]))
			}
		}},
		{"removing a target leaves the others", func(t *testing.T, r *registrar, p *page) {
			r.registerSet(t, "multi-3", "logs", tg("10.0.2.31:8080", 1, "active"), tg("10.0.2.32:8080", 3, "active"))
			p.openTargets("multi-3")
			p.click(targetSel("multi-3", "10.0.2.31:8080") + " button.remove")
			p.waitFor("the target to leave the panel", `!`+exists(targetSel("multi-3", "10.0.2.31:8080")))
			if _, servers := r.servers(t); setOf(servers["multi-3"]) != "10.0.2.32:8080/3/active" {
				t.Errorf("after removing, the API has %q", setOf(servers["multi-3"]))
			}
		}},
		{"a write that leaves no active target is sent only once confirmed", func(t *testing.T, r *registrar, p *page) {
			r.registerSet(t, "noact-1", "logs", tg("10.0.3.1:8080", 1, "active"), tg("10.0.3.2:8080", 1, "draining"))
			rev, _ := r.servers(t)
			p.openTargets("noact-1")
			p.click(targetSel("noact-1", "10.0.3.1:8080") + " button.drain")
			p.waitFor("the confirmation", `document.getElementById("confirm-noactive").open`)
			if got := p.text("#confirm-noactive"); !strings.Contains(got, "noact-1") || !strings.Contains(got, "503 no_active_target") {
				t.Errorf("the confirmation reads %q, want it to name noact-1 and the 503", got)
			}
			p.cancelNoActive()
			if now, servers := r.servers(t); now != rev || setOf(servers["noact-1"]) != "10.0.3.1:8080/1/active 10.0.3.2:8080/1/draining" {
				t.Errorf("after Cancel: revision %d → %d, set %q", rev, now, setOf(servers["noact-1"]))
			}
			p.click(targetSel("noact-1", "10.0.3.1:8080") + " button.drain")
			p.waitFor("the confirmation", `document.getElementById("confirm-noactive").open`)
			p.click("#noactive-yes")
			p.waitFor("the drained target", `document.querySelector(`+jsString(targetSel("noact-1", "10.0.3.1:8080"))+`).dataset.state === "draining"`)
			if _, servers := r.servers(t); setOf(servers["noact-1"]) != "10.0.3.1:8080/1/draining 10.0.3.2:8080/1/draining" {
				t.Errorf("after confirming, the API has %q", setOf(servers["noact-1"]))
			}
		}},
		{"the registrar's no-active refusal of a write from a stale page asks too", func(t *testing.T, r *registrar, p *page) {
			r.registerSet(t, "noact-2", "logs", tg("10.0.3.11:8080", 1, "active"), tg("10.0.3.12:8080", 1, "active"))
			p.openTargets("noact-2")
			// Behind the page's back: the page still shows .12 active.
			if status, res := r.call(t, http.MethodPatch, "/api/servers/noact-2/targets/"+url.PathEscape("10.0.3.12:8080"),
				map[string]any{"state": "draining"}); status != http.StatusOK {
				t.Fatalf("PATCH: HTTP %d %+v", status, res)
			}
			p.click(targetSel("noact-2", "10.0.3.11:8080") + " button.drain")
			p.waitFor("the confirmation", `document.getElementById("confirm-noactive").open`)
			p.cancelNoActive()
			if _, servers := r.servers(t); setOf(servers["noact-2"]) != "10.0.3.11:8080/1/active 10.0.3.12:8080/1/draining" {
				t.Errorf("after Cancel the API has %q", setOf(servers["noact-2"]))
			}
		}},
		{"editing a server with several targets keeps them", func(t *testing.T, r *registrar, p *page) {
			r.registerSet(t, "edit-1", "logs", tg("10.0.4.1:8080", 90, "active"), tg("10.0.4.2:8080", 10, "draining"))
			p.edit("edit-1")
			if p.visible("#ipAddress") {
				t.Error("the address field is shown for a server with two targets")
			}
			if got := p.text("#targets-note"); !strings.Contains(got, "2 targets") {
				t.Errorf("the form's note reads %q", got)
			}
			p.replace("#serviceName", "shop\n")
			p.waitFor("the new service in the list", `document.querySelector(`+jsString(rowSel("edit-1"))+`).textContent.includes("shop")`)
			_, servers := r.servers(t)
			if got := servers["edit-1"]; got.Service != "shop" || setOf(got) != "10.0.4.1:8080/90/active 10.0.4.2:8080/10/draining" {
				t.Errorf("after saving, the API has %s with %q", got, setOf(got))
			}
			if !p.visible("#ipAddress") {
				t.Error("after saving, the add form has no address field")
			}
		}},
		{"editing a one-target server's address keeps its weight", func(t *testing.T, r *registrar, p *page) {
			r.registerSet(t, "edit-2", "logs", tg("10.0.4.11:8080", 5, "active"))
			p.edit("edit-2")
			p.replace("#ipAddress", "10.0.4.12:8080\n")
			p.waitFor("the new address in the list", `document.querySelector(`+jsString(rowSel("edit-2"))+`).textContent.includes("10.0.4.12:8080")`)
			if _, servers := r.servers(t); setOf(servers["edit-2"]) != "10.0.4.12:8080/5/active" {
				t.Errorf("after saving, the API has %q", setOf(servers["edit-2"]))
			}
		}},
		{"a target added while a one-target server is edited is not overwritten", func(t *testing.T, r *registrar, p *page) {
			r.register(t, "edit-3", "10.0.4.21:8080", "logs")
			p.edit("edit-3")
			if status, res := r.call(t, http.MethodPost, "/api/servers/edit-3/targets",
				map[string]any{"address": "10.0.4.22:8080"}); status != http.StatusOK {
				t.Fatalf("POST target: HTTP %d %+v", status, res)
			}
			p.replace("#ipAddress", "10.0.4.23:8080\n")
			p.waitFor("the refusal", `!document.getElementById("form-error").hidden`)
			if got := p.text("#form-error"); !strings.Contains(got, "edit-3 has 2 targets now") {
				t.Errorf("the form says %q", got)
			}
			if _, servers := r.servers(t); setOf(servers["edit-3"]) != "10.0.4.21:8080/1/active 10.0.4.22:8080/1/active" {
				t.Errorf("the API has %q", setOf(servers["edit-3"]))
			}
		}},
		{"the filter finds a server by any of its targets", func(t *testing.T, r *registrar, p *page) {
			r.registerSet(t, "filt-1", "logs", tg("10.0.5.1:8080", 1, "active"), tg("10.0.5.77:8080", 1, "draining"))
			p.refreshed("filt-1")
			p.typeInto("#filter", "10.0.5.77")
			p.waitFor("the filter to apply", `!`+exists(rowSel("one-1")))
			hosts := eval[[]string](p, `[...document.querySelectorAll("#servers tbody tr[data-host]")].map(r => r.dataset.host)`)
			if len(hosts) != 1 || hosts[0] != "filt-1" {
				t.Errorf("filter 10.0.5.77 shows %v, want [filt-1]", hosts)
			}
		}},
		{"blue/green: one write swaps the states, and the page waits until the proxy has it", func(t *testing.T, r *registrar, p *page) {
			const blue, green = "10.0.6.1:8080", "10.0.6.2:8080"
			r.registerSet(t, "bg-1", "logs", tg(blue, 1, "active"), tg(green, 1, "draining"))
			rev, _ := r.servers(t)
			lin := r.lineage(t)
			r.pollAs(t, "edge-bg", rev, lin, 30) // a proxy at the revision before the switch
			p.openTargets("bg-1")
			p.click(panelSel("bg-1") + " .switch-button")
			p.waitFor("the switch to be written", `document.querySelector(`+jsString(panelSel("bg-1")+" .switch-button")+`).disabled`)
			// The write lands at once; its answer waits for the proxy.
			now, servers := r.servers(t)
			for deadline := time.Now().Add(5 * time.Second); now == rev && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
				now, servers = r.servers(t)
			}
			if now != rev+1 {
				t.Errorf("the switch moved the revision from %d to %d, want one revision", rev, now)
			}
			if got := setOf(servers["bg-1"]); got != "10.0.6.1:8080/1/draining 10.0.6.2:8080/1/active" {
				t.Fatalf("after the switch the API has %q, want blue draining and green active", got)
			}
			if strings.Contains(p.text("#messages"), "Switched") {
				t.Error("the page said the switch was done before the proxy applied it")
			}
			r.pollAs(t, "edge-bg", rev+1, lin, 30) // the proxy reports the switch's revision
			p.waitFor("the switch's answer", `document.querySelector("#messages .msg.ok")?.textContent.includes("Switched bg-1")`)
			msg := p.text("#messages .msg.ok")
			for _, want := range []string{"revision " + strconv.FormatInt(rev+1, 10), "new requests go to " + green, "applied by all 1 proxy"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
			p.waitFor("the swapped states in the panel", `document.querySelector(`+jsString(targetSel("bg-1", blue))+`).dataset.state === "draining"`)
		}},
		{"a phone-width screen with a targets panel open needs no sideways scrolling", func(t *testing.T, r *registrar, p *page) {
			r.registerSet(t, "phone-1.a-rather-long-name.example", "logs",
				tg("long-dns-name.internal.example.com:65535", 90, "active"), tg("[2001:db8::7]:9000", 10, "draining"))
			p.openTargets("phone-1.a-rather-long-name.example")
			p.do(emulatePhone())
			if w := eval[int](p, `document.documentElement.scrollWidth`); w > 390 {
				t.Errorf("at 390px the page is %dpx wide", w)
			}
		}},
	}
	runCases(t, r, browser, cases)

	// Keep what a server with several targets looks like, at laptop and phone width.
	r.registerSet(t, "shop", "shop", tg("10.0.7.1:8080", 90, "active"), tg("10.0.7.2:8080", 10, "active"),
		tg("10.0.7.3:8080", 1, "draining"), tg("10.0.7.4:8080", 0, "active"))
	p := openPage(t, browser, r.URL+"/")
	p.openTargets("shop")
	dir := artifactDir(t)
	p.screenshot(dir, "page-targets-laptop.png", 1280)
	p.shot(dir, "page-targets-panel-laptop.png", panelSel("shop"))
	p.screenshot(dir, "page-targets-phone.png", 390)
	p.shot(dir, "page-targets-panel-phone.png", panelSel("shop"))
	p.shot(dir, "page-targets-row-phone.png", rowSel("shop"))
}

// shot saves a PNG of the first element matching sel into dir, at the viewport the
// page has, and logs its path.
func (p *page) shot(dir, name, sel string) {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("screenshot of %s: %v", sel, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot of %s: %s", sel, path)
}
