package web_test

import (
	"html/template"
	"net/http"
	"net/http/httptest"
	"testing"
)

// attackerPage is a page on another origin (another loopback port) that tries, in the
// two ways a registrar without these guards let it, to change the registrar's table from a visitor's
// browser: an HTML form with enctype="text/plain" whose one field spells a JSON body,
// and fetch(..., {mode: "no-cors"}) with a JSON body (sent as text/plain). Neither
// needs a CORS preflight. body[data-list] is set once both requests were answered.
var attackerPage = template.Must(template.New("attacker").Parse(`<!doctype html>
<html><body>
<iframe name="sink"></iframe>
<form id="f" method="POST" enctype="text/plain" target="sink" action="{{.}}/api/servers/register">
<input type="hidden" name='{"host":"web-1","ipAddress":"10.6.6.6","serviceName":"pwned' value='"}'>
</form>
<script>
(async () => {
  const formSent = new Promise(done => { document.querySelector("iframe").onload = done; });
  document.getElementById("f").submit();
  await formSent;
  let fetched = "answered";
  try {
    await fetch("{{.}}/api/servers/register", {method: "POST", mode: "no-cors",
      body: JSON.stringify({host: "web-2", ipAddress: "10.6.6.7", serviceName: "pwned"})});
  } catch (e) { fetched = "failed: " + e.message; }
  document.body.dataset.fetch = fetched;
  document.body.dataset.list = "done";
})();
</script>
</body></html>`))

// A page on another site cannot change routes through a visitor's browser, on a
// registrar without a token (the case the issue found open).
func TestCrossSiteWritesChangeNothing(t *testing.T) {
	r := startRegistrar(t, "")
	r.register(t, "web-1", "10.1.2.3:8080", "logs")
	revBefore, _ := r.servers(t)
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		attackerPage.Execute(w, r.URL)
	}))
	t.Cleanup(attacker.Close)

	p := openPage(t, startBrowser(t), attacker.URL+"/")
	if got := eval[string](p, `document.body.dataset.fetch`); got != "answered" {
		t.Fatalf("the no-cors fetch did not reach the registrar (%s): the test proves nothing", got)
	}
	rev, servers := r.servers(t)
	if got := servers["web-1"]; got.Target != "10.1.2.3:8080" || got.Service != "logs" {
		t.Errorf("the text/plain form from %s changed web-1 to %v", attacker.URL, got)
	}
	if got, ok := servers["web-2"]; ok {
		t.Errorf("the no-cors fetch from %s registered %v", attacker.URL, got)
	}
	if rev != revBefore {
		t.Errorf("the revision moved from %d to %d", revBefore, rev)
	}
}
