package web_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromiumPath is where Debian's "chromium" package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// startBrowser starts one headless Chromium for the test, with a fresh profile and
// nothing that reaches outside the machine. Without a browser the test fails, saying
// how to get one: `make test` installs it (scripts/test-deps), so a green run always
// includes the page test, on a newcomer's machine as in CI.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath
	if _, err := os.Stat(path); err != nil {
		if p, lerr := exec.LookPath("chromium"); lerr == nil {
			path = p
		} else {
			t.Fatalf("no Chromium at %s or on PATH; run `make test-deps` (or apt-get install chromium)", chromiumPath)
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	// One deadline for the whole browser: a hung page fails the test, never the run.
	ctx, cancelTime := context.WithTimeout(context.Background(), 2*time.Minute)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc(); cancelTime() })
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return browserCtx
}

// page is one browser tab showing the registrar's page. A new tab has its own
// sessionStorage, so each case starts without a token unless it enters one.
type page struct {
	t   *testing.T
	ctx context.Context
}

// openPage opens url in a new tab and waits until the page's first list load ended
// (loaded, or failed with the reason on screen). Every Content-Security-Policy
// violation in the tab is recorded from the first byte of the page on, and the test
// fails at its end if there was any: the page must work under the registrar's CSP.
func openPage(t *testing.T, browser context.Context, url string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	p := &page{t: t, ctx: ctx}
	p.do(recordCSPViolations(), chromedp.EmulateViewport(1280, 900), chromedp.Navigate(url))
	t.Cleanup(func() { // runs before cancel: cleanups run last-in first-out
		if v := p.cspViolations(); len(v) > 0 {
			t.Errorf("the page broke its Content-Security-Policy: %q", v)
		}
	})
	p.waitFor("the first list load", `document.body.dataset.list`)
	return p
}

// recordCSPViolations installs, in every document the tab loads and before any of its
// own scripts, a listener that keeps each securitypolicyviolation event in
// window.__cspViolations.
func recordCSPViolations() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", e => window.__cspViolations.push(
  e.effectiveDirective + " refused " + (e.blockedURI || "(inline)") + " at " + e.sourceFile + ":" + e.lineNumber));`,
		})
		return err
	})
}

// cspViolations returns and clears what recordCSPViolations recorded.
func (p *page) cspViolations() []string {
	p.t.Helper()
	return eval[[]string](p, `(() => { const v = window.__cspViolations || ["(the recorder is missing)"]; window.__cspViolations = []; return v; })()`)
}

func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v\npage state: %s", err, p.state())
	}
}

// typeInto types text into the field with real key events ("\n" presses Enter).
func (p *page) typeInto(sel, text string) {
	p.t.Helper()
	p.do(chromedp.SendKeys(chromedp.CSS(sel), text))
}

// replace empties a field and types text into it.
func (p *page) replace(sel, text string) {
	p.t.Helper()
	// SetValue refuses "" (it checks the value it reads back), so the field is emptied in JS.
	p.do(chromedp.Evaluate[chromedp.Void](`document.querySelector(`+jsString(sel)+`).value = ""`),
		chromedp.SendKeys(chromedp.CSS(sel), text))
}

func (p *page) click(sel string) {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.CSS(sel)))
}

// waitFor waits until the JavaScript expression is truthy (at most 10s); what names
// the awaited thing in the failure, which also shows what the page says.
func (p *page) waitFor(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		p.t.Fatalf("waiting for %s (%s): %v\npage state: %s", what, expr, err, p.state())
	}
}

// eval returns the value of a JavaScript expression.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// text returns the text of the first element matching sel ("" when there is none).
func (p *page) text(sel string) string {
	p.t.Helper()
	return eval[string](p, `(document.querySelector(`+jsString(sel)+`) || {}).textContent || ""`)
}

// visible reports whether the element exists and is rendered.
func (p *page) visible(sel string) bool {
	p.t.Helper()
	return eval[bool](p, `(() => { const e = document.querySelector(`+jsString(sel)+`);
		return !!e && e.checkVisibility(); })()`)
}

// state is what the page shows a person, for failure messages.
func (p *page) state() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		list: document.body.dataset.list,
		facts: document.querySelector(".facts")?.innerText,
		messages: document.getElementById("messages")?.innerText,
		formError: document.getElementById("form-error")?.innerText,
		fieldErrors: [...document.querySelectorAll(".field-error")].map(e => e.id + ": " + e.innerText),
		listError: document.getElementById("list-error")?.innerText,
		rows: [...document.querySelectorAll("#servers tbody tr")].map(r => r.innerText),
	})`))
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	return s
}

// screenshot saves a full-page PNG at the given viewport width into dir and logs
// its path, so a person can look at what the test saw.
func (p *page) screenshot(dir, name string, width int64) string {
	p.t.Helper()
	view := chromedp.EmulateViewport(width, 900)
	if width < 600 {
		view = chromedp.EmulateViewport(width, 844, chromedp.EmulateMobile)
	}
	p.do(view, chromedp.Sleep(200*time.Millisecond))
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100)) // 100: PNG, not JPEG
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot (%dpx wide): %s", width, path)
	return path
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// rowSel selects the list row of a server.
func rowSel(name string) string { return `#servers tr[data-host=` + strconv.Quote(name) + `]` }

// emulatePhone makes the tab a 390px-wide phone screen.
func emulatePhone() chromedp.Action[chromedp.Void] {
	return chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
