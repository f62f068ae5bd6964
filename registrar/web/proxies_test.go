package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The proxies strip in a real Chromium against the real registrar binary. The proxies
// are this test speaking sync protocol 2 over HTTP exactly as the filter does (the
// whole chain with real dev proxies is e2e's TestProxyStatus).

// lineage reads the registrar's lineage from GET /api/proxies.
func (r *registrar) lineage(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(r.URL + "/api/proxies")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Result struct {
			Lineage string `json:"lineage"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.Result.Lineage == "" {
		t.Fatalf("GET /api/proxies: %v %+v", err, doc)
	}
	return doc.Result.Lineage
}

// pollAs sends one version-2 poll as proxy id at revision after with the given wait
// and does not wait for its answer (a current proxy's poll is parked up to wait
// seconds, as in real life). The registrar records a poll when it arrives; the
// polls end when the test's registrar stops.
func (r *registrar) pollAs(t *testing.T, id string, after int64, lineage string, wait int) {
	t.Helper()
	q := url.Values{"v": {"2"}, "proxy": {id}, "cluster": {"edge"}, "version": {"test"},
		"after": {strconv.FormatInt(after, 10)}, "lineage": {lineage}, "wait": {strconv.Itoa(wait)}}
	req, err := http.NewRequestWithContext(context.WithoutCancel(t.Context()), "GET", r.URL+"/v1/routes?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	arrived := make(chan struct{})
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		close(arrived)
	}()
	// The registrar records the poll before it parks it; give it the moment to arrive.
	select {
	case <-arrived:
	case <-time.After(150 * time.Millisecond):
	}
}

func TestPageProxies(t *testing.T) {
	r := startRegistrar(t, "")
	browser := startBrowser(t)
	r.register(t, "web-0", "10.0.0.1", "logs")
	rev, _ := r.servers(t)
	lin := r.lineage(t)

	t.Run("no proxy yet", func(t *testing.T) {
		p := openPage(t, browser, r.URL+"/")
		p.waitFor("the strip", `document.body.dataset.proxies === "loaded"`)
		if got := p.text("#proxy-summary"); got != "No proxy has polled this registrar yet." {
			t.Errorf("summary %q", got)
		}
	})

	r.pollAs(t, "edge-a", rev, lin, 30)
	r.pollAs(t, "edge-b", rev, lin, 30)

	t.Run("a write becomes live as the proxies apply it", func(t *testing.T) {
		p := openPage(t, browser, r.URL+"/")
		want := "2 proxies, all at revision " + itoa(rev) + "."
		p.waitFor("the strip to say both are current", `document.getElementById("proxy-summary").textContent === `+jsString(want))
		if n := eval[int](p, `document.querySelectorAll("#proxy-list li.current").length`); n != 2 {
			t.Errorf("%d proxies shown current, want 2", n)
		}
		p.typeInto("#host", "web-1")
		p.typeInto("#ipAddress", "10.0.0.2")
		p.typeInto("#serviceName", "logs\n")
		p.waitFor("the change line", `document.getElementById("proxy-change").dataset.revision === `+jsString(itoa(rev+1)))
		if got := p.text("#proxy-change"); !strings.Contains(got, "applied by 0 of 2") {
			t.Errorf("right after the write the change line reads %q, want applied by 0 of 2", got)
		}
		r.pollAs(t, "edge-a", rev+1, lin, 30)
		p.waitFor("applied by 1 of 2", `document.getElementById("proxy-change").textContent.includes("applied by 1 of 2")`)
		if got := eval[string](p, `document.querySelector('#proxy-list li[data-proxy="edge-b"]').className`); got != "behind" {
			t.Errorf("edge-b, one revision behind, is shown as %q", got)
		}
		if got := p.text(`#proxy-list li[data-proxy="edge-b"]`); !strings.Contains(got, "behind by 1 revision") {
			t.Errorf("edge-b reads %q", got)
		}
		if got := p.text("#proxy-summary"); got != "2 proxies: 1 at revision "+itoa(rev+1)+", 1 behind." {
			t.Errorf("summary %q", got)
		}
		r.pollAs(t, "edge-b", rev+1, lin, 30)
		p.waitFor("live on both", `document.getElementById("proxy-change").dataset.live === "true"`)
		if got := p.text("#proxy-change"); got != "Revision "+itoa(rev+1)+": live \u2014 applied by all 2 proxies." {
			t.Errorf("change line %q", got)
		}
	})

	t.Run("a silent proxy is shown gone", func(t *testing.T) {
		cur, _ := r.servers(t)
		r.pollAs(t, "edge-quiet", cur, lin, 0) // wait 0: gone 5 s after this poll
		p := openPage(t, browser, r.URL+"/")
		p.waitFor("edge-quiet listed", `document.querySelector('#proxy-list li[data-proxy="edge-quiet"]')`)
		time.Sleep(5500 * time.Millisecond)
		p.click("#refresh")
		p.waitFor("edge-quiet gone", `document.querySelector('#proxy-list li[data-proxy="edge-quiet"]').dataset.state === "gone"`)
		if got := p.text(`#proxy-list li[data-proxy="edge-quiet"]`); !strings.Contains(got, "gone") {
			t.Errorf("edge-quiet reads %q", got)
		}
		if got := p.text("#proxy-summary"); !strings.Contains(got, "1 gone") {
			t.Errorf("summary %q", got)
		}
	})

	t.Run("hostile proxy ids are shown as inert, escaped text", func(t *testing.T) {
		hostile := `<img src=x onerror="window.__pwned=1">` + "\u202e"
		cur, _ := r.servers(t)
		r.pollAs(t, hostile, cur, lin, 30)
		p := openPage(t, browser, r.URL+"/")
		p.waitFor("the strip", `document.body.dataset.proxies === "loaded" && document.querySelectorAll("#proxy-list li").length >= 4`)
		if n := eval[int](p, `document.querySelectorAll("#proxies img, #proxies script").length`); n != 0 {
			t.Errorf("%d elements made from a proxy id", n)
		}
		if eval[bool](p, `window.__pwned === 1`) {
			t.Error("a proxy id ran code")
		}
		text := eval[string](p, `document.getElementById("proxy-list").textContent`)
		p.screenshot(artifactDir(t), "page-proxies.png", 1280)
		if !strings.Contains(text, "%3Cimg%20src=x%20onerror=%22window.__pwned=1%22%3E%E2%80%AE") || strings.Contains(text, "<img") || strings.Contains(text, "\u202e") {
			t.Errorf("the list reads %q, want the id only in its escaped form", text)
		}
	})
}
