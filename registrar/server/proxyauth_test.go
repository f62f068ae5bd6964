package server

import (
	"fmt"
	"strings"
	"testing"
)

// TestProxyToken: with a proxy token, /v1/ takes only it and /api/ never does.
func TestProxyToken(t *testing.T) {
	const cms, proxy = "cms-token-1", "proxy-token-1"
	reg := startRegistrar(t, regOptions{token: cms, proxyToken: proxy})
	for _, c := range []struct {
		name, path, token string
		code              int
	}{
		{"poll with the proxy token", "/v1/routes?v=2", proxy, 200},
		{"poll with the CMS token", "/v1/routes?v=2", cms, 401},
		{"poll without a token", "/v1/routes?v=2", "", 401},
		{"API with the proxy token", "/api/servers", proxy, 401},
		{"API with the CMS token", "/api/servers", cms, 200},
		{"proxies list with the proxy token", "/api/proxies", proxy, 401},
	} {
		var hdr []string
		if c.token != "" {
			hdr = []string{"Authorization", "Bearer " + c.token}
		}
		r := call(t, "GET", reg.URL+c.path, "", hdr...)
		if r.Code != c.code {
			t.Errorf("%s: %d, want %d: %s", c.name, r.Code, c.code, r.Body)
		}
		if c.code == 401 && strings.HasPrefix(c.path, "/v1/") && !strings.Contains(string(r.Body), "proxy token") {
			t.Errorf("%s: the 401 does not say which token: %s", c.name, r.Body)
		}
	}
	// A write with the proxy token changes nothing.
	r := call(t, "POST", reg.URL+"/api/servers/register", regBody("web-1", "10.1.2.3", "x"), "Authorization", "Bearer "+proxy)
	if r.Code != 401 || reg.Store.Current().Revision() != 0 {
		t.Errorf("a write with the proxy token: %d, revision %d", r.Code, reg.Store.Current().Revision())
	}
}

// TestPollClaimsNotTrusted: a poll that claims a revision the registrar never served
// shows no proxy current and ends no wait=applied; a poll refused (400, 401) is not
// recorded at all.
func TestPollClaimsNotTrusted(t *testing.T) {
	const cms, proxy = "cms-token-2", "proxy-token-2"
	reg := startRegistrar(t, regOptions{token: cms, proxyToken: proxy})
	auth := []string{"Authorization", "Bearer " + cms}
	register(t, reg.URL, "web-1", "10.1.2.3", "x", auth...)
	lineage := reg.Store.Lineage()
	poll := func(q string, token string) int {
		return call(t, "GET", reg.URL+"/v1/routes?v=2&"+q, "", "Authorization", "Bearer "+token).Code
	}
	if c := poll(fmt.Sprintf("proxy=edge-a&after=18446744073709551615&lineage=%s", lineage), proxy); c != 200 && c != 304 {
		t.Fatalf("the poll from beyond got %d, want it answered (200 or 304)", c)
	}
	poll("proxy=edge-b&snapshot=zero", proxy)                          // 400
	poll("proxy=edge-c&lineage=bad%20lineage", proxy)                  // 400
	poll(fmt.Sprintf("proxy=edge-d&after=1&lineage=%s", lineage), cms) // 401

	r := call(t, "GET", reg.URL+"/api/proxies", "", auth...)
	res := r.Result(t)
	if res.Proxies == nil || len(*res.Proxies) != 1 || (*res.Proxies)[0].Proxy != "edge-a" {
		t.Fatalf("listed %s; want only edge-a (the refused polls not recorded)", r.Body)
	}
	if v := (*res.Proxies)[0]; v.State != stateBehind || v.Revision != 0 {
		t.Errorf("edge-a after a revision never served: %+v, want behind at revision 0", v)
	}
	w := call(t, "POST", reg.URL+"/api/servers/register?wait=applied&timeout=300ms", regBody("web-2", "10.1.2.4", "x"), auth...)
	if got := w.Result(t); got.Applied == nil || *got.Applied {
		t.Errorf("wait=applied with only a made-up claim polling: %s, want applied false", w.Body)
	}

}
