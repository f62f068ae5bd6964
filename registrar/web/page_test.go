package web_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The page in a real headless Chromium against the real registrar binary. Each case
// opens its own tab, sets up what it needs through the API, acts as a person would
// (keys and clicks), and checks both the page and GET /api/servers over HTTP.

// pageCase is one behaviour of the page.
type pageCase struct {
	name string
	run  func(t *testing.T, r *registrar, p *page)
}

// refused waits until the element with the given id shows a refusal that contains
// want, and checks that the API stored nothing under host.
func refused(t *testing.T, r *registrar, p *page, id, want, host string) {
	t.Helper()
	p.waitFor("the refusal in #"+id, `!document.getElementById(`+jsString(id)+`).hidden`)
	if got := p.text("#" + id); !strings.Contains(got, want) {
		t.Errorf("#%s reads %q, want it to say %q", id, got, want)
	}
	if _, servers := r.servers(t); servers[host].Name != "" {
		t.Errorf("the API stored %s anyway: %v", host, servers[host])
	}
}

// runCases runs each case in its own tab of browser against r.
func runCases(t *testing.T, r *registrar, browser context.Context, cases []pageCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, r, openPage(t, browser, r.URL+"/"))
		})
	}
}

func TestPage(t *testing.T) {
	r := startRegistrar(t, "")
	browser := startBrowser(t)
	cases := []pageCase{
		{"adding through the form with the keyboard lists the server", func(t *testing.T, r *registrar, p *page) {
			p.typeInto("#host", "web-1")
			p.typeInto("#ipAddress", "10.1.2.3:8080")
			p.typeInto("#serviceName", "logs\n") // Enter submits
			p.waitFor("web-1 in the list", `document.querySelector('`+rowSel("web-1")+`')`)
			row := p.text(rowSel("web-1"))
			for _, want := range []string{"web-1", "10.1.2.3:8080", "logs"} {
				if !strings.Contains(row, want) {
					t.Errorf("row %q lacks %q", row, want)
				}
			}
			rev, servers := r.servers(t)
			if got := servers["web-1"]; got.Target != "10.1.2.3:8080" || got.Service != "logs" {
				t.Errorf("GET /api/servers has %v, want web-1 → 10.1.2.3:8080 (logs)", got)
			}
			if got := p.text("#revision"); got != itoa(rev) {
				t.Errorf("page shows revision %q, API says %d", got, rev)
			}
			if msg := p.text("#messages .msg.ok"); !strings.Contains(msg, "web-1") {
				t.Errorf("success message %q does not name web-1", msg)
			}
		}},
		{"a bad address shows the API's error by the address field", func(t *testing.T, r *registrar, p *page) {
			p.typeInto("#host", "web-2")
			p.typeInto("#ipAddress", "999.1.1.1")
			p.typeInto("#serviceName", "logs")
			p.click("#save")
			p.waitFor("the address error", `!document.getElementById("ipAddress-error").hidden`)
			if got := p.text("#ipAddress-error"); !strings.HasPrefix(got, "ipAddress") || !strings.Contains(got, "999.1.1.1") {
				t.Errorf("address error is %q, want the API's message about 999.1.1.1", got)
			}
			if got := eval[string](p, `document.getElementById("ipAddress").getAttribute("aria-invalid")`); got != "true" {
				t.Errorf("address field aria-invalid = %q, want true", got)
			}
			if !p.visible("#form-error") {
				t.Error("no 'Not saved' summary by the save button")
			}
			for _, f := range []string{"#host-error", "#serviceName-error"} {
				if p.visible(f) {
					t.Errorf("%s shown for an address error: %q", f, p.text(f))
				}
			}
			if got := eval[string](p, `document.getElementById("ipAddress").value`); got != "999.1.1.1" {
				t.Errorf("the typed address was lost: field holds %q", got)
			}
			if _, servers := r.servers(t); servers["web-2"].Name != "" {
				t.Errorf("the API stored web-2 anyway: %v", servers["web-2"])
			}
		}},
		{"editing replaces the address", func(t *testing.T, r *registrar, p *page) {
			r.register(t, "web-3", "10.0.0.3:80", "logs")
			p.click(`#refresh`)
			p.waitFor("web-3 in the list", `document.querySelector('`+rowSel("web-3")+`')`)
			p.click(rowSel("web-3") + " button.edit")
			p.waitFor("the form in edit mode", `document.getElementById("host").readOnly && document.getElementById("host").value === "web-3"`)
			p.replace("#ipAddress", "10.0.0.33:8080")
			p.click("#save")
			p.waitFor("the new address in the list", `document.querySelector('`+rowSel("web-3")+`').textContent.includes("10.0.0.33:8080")`)
			if _, servers := r.servers(t); servers["web-3"].Target != "10.0.0.33:8080" {
				t.Errorf("GET /api/servers has %v, want web-3 → 10.0.0.33:8080", servers["web-3"])
			}
			if got := p.text("#form-title"); got != "Add a server" {
				t.Errorf("after saving, the form title is %q, want it back to adding", got)
			}
		}},
		{"delete asks first, and keeping the server keeps it", func(t *testing.T, r *registrar, p *page) {
			r.register(t, "web-4", "10.0.0.4", "logs")
			p.click(`#refresh`)
			p.waitFor("web-4 in the list", `document.querySelector('`+rowSel("web-4")+`')`)
			p.click(rowSel("web-4") + " button.delete")
			p.waitFor("the confirmation", `document.getElementById("confirm-delete").open`)
			if got := p.text("#confirm-delete"); !strings.Contains(got, "web-4") {
				t.Errorf("confirmation %q does not name web-4", got)
			}
			p.click(`#confirm-delete button[value=cancel]`)
			p.waitFor("the confirmation to close", `!document.getElementById("confirm-delete").open`)
			if _, servers := r.servers(t); servers["web-4"].Name == "" {
				t.Error("web-4 was deleted although the person chose to keep it")
			}
			if !p.visible(rowSel("web-4")) {
				t.Error("web-4 left the list")
			}
		}},
		{"Escape at a later confirmation keeps the server", func(t *testing.T, r *registrar, p *page) {
			r.register(t, "web-10", "10.0.0.10", "logs")
			r.register(t, "web-11", "10.0.0.11", "logs")
			p.click(`#refresh`)
			p.waitFor("web-11 in the list", `document.querySelector('`+rowSel("web-11")+`')`)
			p.click(rowSel("web-10") + " button.delete")
			p.click("#confirm-yes") // one confirmed delete first, in the same tab
			p.waitFor("web-10 to leave the list", `!document.querySelector('`+rowSel("web-10")+`')`)
			p.click(rowSel("web-11") + " button.delete")
			p.waitFor("the confirmation", `document.getElementById("confirm-delete").open`)
			p.do(chromedp.KeyEvent(kb.Escape))
			p.waitFor("the confirmation to close", `!document.getElementById("confirm-delete").open`)
			p.do(chromedp.Sleep(200 * time.Millisecond)) // a wrongly sent DELETE would land by now
			if _, servers := r.servers(t); servers["web-11"].Name == "" {
				t.Error("Escape deleted web-11")
			}
		}},
		{"delete, once confirmed, removes the server", func(t *testing.T, r *registrar, p *page) {
			r.register(t, "web-5", "10.0.0.5", "logs")
			p.click(`#refresh`)
			p.waitFor("web-5 in the list", `document.querySelector('`+rowSel("web-5")+`')`)
			p.click(rowSel("web-5") + " button.delete")
			p.waitFor("the confirmation", `document.getElementById("confirm-delete").open`)
			p.click("#confirm-yes")
			p.waitFor("web-5 to leave the list", `!document.querySelector('`+rowSel("web-5")+`')`)
			if _, servers := r.servers(t); servers["web-5"].Name != "" {
				t.Errorf("GET /api/servers still has %v", servers["web-5"])
			}
			if msg := p.text("#messages .msg.ok"); !strings.Contains(msg, "Deleted web-5") {
				t.Errorf("success message is %q, want it to say Deleted web-5", msg)
			}
		}},
		{"a failed delete stays on screen after a later success", func(t *testing.T, r *registrar, p *page) {
			r.register(t, "web-6", "10.0.0.6", "logs")
			p.click(`#refresh`)
			p.waitFor("web-6 in the list", `document.querySelector('`+rowSel("web-6")+`')`)
			r.remove(t, "web-6") // behind the page's back: its DELETE will get 404
			p.click(rowSel("web-6") + " button.delete")
			p.waitFor("the confirmation", `document.getElementById("confirm-delete").open`)
			p.click("#confirm-yes")
			p.waitFor("the delete error", `document.querySelector("#messages .msg.error")`)
			p.typeInto("#host", "web-7")
			p.typeInto("#ipAddress", "10.0.0.7")
			p.typeInto("#serviceName", "logs\n")
			p.waitFor("web-7 in the list", `document.querySelector('`+rowSel("web-7")+`')`)
			if msg := p.text("#messages .msg.error"); !strings.Contains(msg, "web-6") {
				t.Errorf("after a later success the error reads %q, want the failed delete of web-6 still shown", msg)
			}
		}},
		{"the filter shows only matching servers", func(t *testing.T, r *registrar, p *page) {
			r.register(t, "alpha-1", "10.0.1.1", "billing")
			r.register(t, "beta-1", "10.0.1.2", "search")
			p.click(`#refresh`)
			p.waitFor("both in the list", `document.querySelector('`+rowSel("alpha-1")+`') && document.querySelector('`+rowSel("beta-1")+`')`)
			p.typeInto("#filter", "BILL") // case does not matter; service names match too
			p.waitFor("the filter to apply", `!document.querySelector('`+rowSel("beta-1")+`')`)
			hosts := eval[[]string](p, `[...document.querySelectorAll("#servers tbody tr[data-host]")].map(r => r.dataset.host)`)
			if len(hosts) != 1 || hosts[0] != "alpha-1" {
				t.Errorf("filter BILL shows %v, want [alpha-1]", hosts)
			}
		}},
		{"the API panel shows this registrar's curl lines", func(t *testing.T, r *registrar, p *page) {
			for sel, want := range map[string]string{
				"#curl-register":      "-X POST " + r.URL + "/api/servers/register",
				"#curl-list":          "curl -sS " + r.URL + "/api/servers",
				"#curl-delete":        "-X DELETE " + r.URL + "/api/servers/web-1",
				"#curl-register-wait": "-X POST '" + r.URL + "/api/servers/register?wait=applied&timeout=5s'",
				"#curl-proxies":       "curl -sS " + r.URL + "/api/proxies",
			} {
				if got := p.text(sel); !strings.Contains(got, want) {
					t.Errorf("%s reads %q, want it to contain %q", sel, got, want)
				}
			}
			if got := p.text("#token-state"); got != "not needed" {
				t.Errorf("token state %q, want \"not needed\" on a registrar without -token", got)
			}
		}},
		{"the page runs under a CSP that blocks injected inline code and framing", func(t *testing.T, r *registrar, p *page) {
			// The registrar sends the policy: an inline script added to the page does
			// not run, and the violation is reported (so the recorder that checks every
			// case can see one).
			p.do(chromedp.Evaluate[chromedp.Void](`(() => { const s = document.createElement("script");
				s.textContent = "window.__injected = true"; document.head.appendChild(s); })()`))
			p.waitFor("the violation report", `window.__cspViolations.length > 0`)
			if eval[bool](p, `window.__injected === true`) {
				t.Error("an injected inline script ran")
			}
			if v := p.cspViolations(); len(v) != 1 || !strings.HasPrefix(v[0], "script-src") {
				t.Errorf("violations %q, want the one inline script", v)
			}
			// A frame of the page stays empty: frame-ancestors 'none'.
			p.do(chromedp.Evaluate[chromedp.Void](`(() => { const f = document.createElement("iframe");
				f.id = "framed"; f.onload = () => { window.__frameLoaded = true; };
				f.src = "/"; document.body.appendChild(f); })()`))
			p.waitFor("the frame's load event (fired for a refused frame too)", `window.__frameLoaded === true`)
			if eval[bool](p, `(() => { try { return !!document.getElementById("framed").contentDocument?.getElementById("servers"); } catch (e) { return false; } })()`) {
				t.Error("the page loaded inside a frame")
			}
			p.cspViolations() // the frame's refusal is the browser's, not the page's fault
		}},
		{"a phone-width screen needs no sideways scrolling", func(t *testing.T, r *registrar, p *page) {
			r.register(t, "a-rather-long-server-name-for-a-phone.example", "long-dns-name.internal.example.com:65535", "logs")
			p.click(`#refresh`)
			p.waitFor("the long name in the list", `document.querySelector('`+rowSel("a-rather-long-server-name-for-a-phone.example")+`')`)
			p.do(emulatePhone())
			if w := eval[int](p, `document.documentElement.scrollWidth`); w > 390 {
				t.Errorf("at 390px the page is %dpx wide", w)
			}
		}},
	}
	runCases(t, r, browser, cases)

	// Keep what the page looked like, at laptop and phone width, for a person to check.
	dir := artifactDir(t)
	p := openPage(t, browser, r.URL+"/")
	p.typeInto("#host", "web-9")
	p.typeInto("#ipAddress", "999.1.1.1")
	p.typeInto("#serviceName", "logs\n")
	p.waitFor("the address error", `!document.getElementById("ipAddress-error").hidden`)
	p.screenshot(dir, "page-laptop.png", 1280)
	p.screenshot(dir, "page-phone.png", 390)
}

func TestPageWithToken(t *testing.T) {
	const token = "s3cret-token-for-the-page-test"
	r := startRegistrar(t, token)
	browser := startBrowser(t)
	fill := func(p *page, name string) {
		p.typeInto("#host", name)
		p.typeInto("#ipAddress", "10.9.9.9:8080")
		p.typeInto("#serviceName", "logs")
	}
	cases := []pageCase{
		{"without a token the page says one is needed", func(t *testing.T, r *registrar, p *page) {
			if !p.visible("#token-panel") {
				t.Error("the token panel is hidden")
			}
			if got := p.text("#list-error"); !strings.Contains(got, "401") {
				t.Errorf("list error %q, want it to say the registrar answered 401", got)
			}
			if got := p.text("#token-state"); !strings.Contains(got, "needed") {
				t.Errorf("token state %q, want it to say a token is needed", got)
			}
			p.waitFor("the proxies strip", `document.body.dataset.proxies === "failed"`)
			if got := p.text("#proxy-summary"); got != "Proxies: enter the token to see them." {
				t.Errorf("without a token the proxies strip reads %q", got)
			}
			if got := p.text("#curl-list"); !strings.Contains(got, "Authorization: Bearer $REGISTRAR_TOKEN") {
				t.Errorf("curl line %q lacks the Authorization header", got)
			}
		}},
		{"a write without the token fails visibly and stores nothing", func(t *testing.T, r *registrar, p *page) {
			fill(p, "tok-1")
			p.click("#save")
			refused(t, r, p, "form-error", "token", "tok-1")
		}},
		{"a wrong token is refused and not kept", func(t *testing.T, r *registrar, p *page) {
			p.typeInto("#token-input", "not-the-token\n")
			p.waitFor("the refusal", `!document.getElementById("token-error").hidden`)
			if got := eval[int](p, `sessionStorage.length`); got != 0 {
				t.Errorf("sessionStorage holds %d items after a refused token", got)
			}
		}},
		{"entering the token makes the failed write work, kept for the session only", func(t *testing.T, r *registrar, p *page) {
			fill(p, "tok-2")
			p.click("#save")
			p.waitFor("the refusal", `!document.getElementById("form-error").hidden`)
			p.typeInto("#token-input", token+"\n")
			p.waitFor("the list to load with the token", `document.body.dataset.list === "loaded"`)
			p.click("#save") // the form kept what was typed
			p.waitFor("tok-2 in the list", `document.querySelector('`+rowSel("tok-2")+`')`)
			if _, servers := r.servers(t); servers["tok-2"].Target != "10.9.9.9:8080" {
				t.Errorf("GET /api/servers has %v, want tok-2 → 10.9.9.9:8080", servers["tok-2"])
			}
			p.waitFor("the proxies strip to load with the token", `document.body.dataset.proxies === "loaded"`)
			if got := p.text("#proxy-summary"); got != "No proxy has polled this registrar yet." {
				t.Errorf("with the token the proxies strip reads %q", got)
			}
			if got := eval[bool](p, `Object.values(sessionStorage).includes(`+jsString(token)+`)`); !got {
				t.Error("the token is not in sessionStorage")
			}
			if got := eval[int](p, `localStorage.length`); got != 0 {
				t.Errorf("localStorage holds %d items; the token must live for the session only", got)
			}
			if strings.Contains(eval[string](p, `document.documentElement.outerHTML`), token) {
				t.Error("the token is written into the page")
			}
		}},
	}
	runCases(t, r, browser, cases)
	p := openPage(t, browser, r.URL+"/")
	fill(p, "tok-3")
	p.click("#save")
	p.waitFor("the refusal", `!document.getElementById("form-error").hidden`)
	p.screenshot(artifactDir(t), "page-token-needed.png", 1280)
}

// artifactDir is where screenshots go: $SWITCHYARD_ARTIFACTS when set (CI keeps it),
// else one folder per test process under the system temp dir, left in place so a
// person can open the files whose paths the test logs.
func artifactDir(t *testing.T) string {
	t.Helper()
	artifacts.once.Do(func() {
		if dir := os.Getenv("SWITCHYARD_ARTIFACTS"); dir != "" {
			artifacts.dir, artifacts.err = dir, os.MkdirAll(dir, 0o755)
			return
		}
		artifacts.dir, artifacts.err = os.MkdirTemp("", "switchyard-page-")
	})
	if artifacts.err != nil {
		t.Fatalf("screenshot folder: %v", artifacts.err)
	}
	return artifacts.dir
}

var artifacts struct {
	once sync.Once
	dir  string
	err  error
}
