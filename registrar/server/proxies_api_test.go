package server

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// proxiesAnswer is GET /api/proxies decoded.
type proxiesAnswer struct {
	Result struct {
		Success  bool         `json:"success"`
		Error    string       `json:"error"`
		Revision uint64       `json:"revision"`
		Lineage  string       `json:"lineage"`
		Replica  string       `json:"replica"`
		Summary  ProxySummary `json:"summary"`
		Proxies  []ProxyView  `json:"proxies"`
	} `json:"result"`
}

func getProxies(t *testing.T, reg *testRegistrar, hdr ...string) (int, proxiesAnswer) {
	t.Helper()
	r := call(t, "GET", reg.URL+"/api/proxies", "", hdr...)
	var a proxiesAnswer
	dec := json.NewDecoder(strings.NewReader(string(r.Body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("GET /api/proxies: %d, body does not parse: %v: %s", r.Code, err, r.Body)
	}
	return r.Code, a
}

// pollAs sends one version-2 poll (wait=0) as the proxy id at revision after of lineage.
func pollAs(t *testing.T, reg *testRegistrar, id string, after uint64, lineage string, hdr ...string) int {
	t.Helper()
	q := url.Values{"v": {"2"}, "proxy": {id}, "cluster": {"edge"}, "version": {"v1.2.3"}, "wait": {"0"}}
	if after > 0 || lineage != "" {
		q.Set("after", itoa64(after))
		q.Set("lineage", lineage)
	}
	return call(t, "GET", reg.URL+"/v1/routes?"+q.Encode(), "", hdr...).Code
}

func itoa64(n uint64) string { b, _ := json.Marshal(n); return string(b) }

func TestAPIProxies(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	code, a := getProxies(t, reg)
	if code != 200 || !a.Result.Success || len(a.Result.Proxies) != 0 || a.Result.Summary.Proxies != 0 {
		t.Fatalf("before any poll: %d %+v", code, a)
	}
	rev := put(t, reg, "web-1", "10.0.0.1")
	lin := reg.Store.Lineage()
	pollAs(t, reg, "edge-a", rev, lin)
	pollAs(t, reg, "edge-b", rev, lin)
	rev2 := put(t, reg, "web-2", "10.0.0.2")
	pollAs(t, reg, "edge-a", rev2, lin)

	_, a = getProxies(t, reg)
	res := a.Result
	if res.Revision != rev2 || res.Lineage != lin || res.Replica == "" || res.Summary != (ProxySummary{Proxies: 2, Current: 1, Behind: 1}) || len(res.Proxies) != 2 {
		t.Fatalf("answer %+v", res)
	}
	pa, pb := res.Proxies[0], res.Proxies[1]
	if pa.Proxy != "edge-a" || pa.State != stateCurrent || pa.Revision != rev2 || pa.Cluster != "edge" || pa.Version != "v1.2.3" || pa.Replica != res.Replica {
		t.Errorf("edge-a: %+v", pa)
	}
	if pb.Proxy != "edge-b" || pb.State != stateBehind || pb.Revision != rev || pb.RevisionsBehind != rev2-rev || pb.LastPoll.IsZero() {
		t.Errorf("edge-b: %+v", pb)
	}
}

func TestAPIProxiesNeedsToken(t *testing.T) {
	reg := startRegistrar(t, regOptions{token: "tok-proxies-1234"})
	if r := call(t, "GET", reg.URL+"/api/proxies", ""); r.Code != 401 {
		t.Errorf("without the token: %d, want 401", r.Code)
	}
	if code := pollAs(t, reg, "edge-a", 0, "", "Authorization", "Bearer tok-proxies-1234"); code != 200 {
		t.Fatalf("poll with the token: %d", code)
	}
	code, a := getProxies(t, reg, "Authorization", "Bearer tok-proxies-1234")
	if code != 200 || len(a.Result.Proxies) != 1 || a.Result.Proxies[0].Proxy != "edge-a" {
		t.Errorf("with the token: %d %+v", code, a)
	}
	if r := call(t, "POST", reg.URL+"/api/proxies", "{}", "Authorization", "Bearer tok-proxies-1234"); r.Code != 405 {
		t.Errorf("POST: %d, want 405", r.Code)
	}
}

// A hostile identity still gets its table, and is listed only in its escaped form.
func TestAPIProxiesHostileIdentity(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	put(t, reg, "web-1", "10.0.0.1")
	hostile := "<script>alert('x')</script>\u202e \x00"
	q := url.Values{"v": {"2"}, "proxy": {hostile}, "cluster": {strings.Repeat("c", 1000)}, "version": {"a\"b"}}
	r := call(t, "GET", reg.URL+"/v1/routes?"+q.Encode(), "")
	if r.Code != 200 || !strings.Contains(string(r.Body), `"web-1"`) {
		t.Fatalf("the poll was not answered with the table: %d %s", r.Code, r.Body)
	}
	raw := call(t, "GET", reg.URL+"/api/proxies", "")
	for _, bad := range []string{"<script", "\\u003cscript", "\\u202e", "\\u0000", `a\"b`} {
		if strings.Contains(string(raw.Body), bad) {
			t.Errorf("the answer holds %q: %s", bad, raw.Body)
		}
	}
	_, a := getProxies(t, reg)
	if len(a.Result.Proxies) != 1 {
		t.Fatalf("listed %+v", a.Result.Proxies)
	}
	p := a.Result.Proxies[0]
	if p.Proxy != "%3Cscript%3Ealert(%27x%27)%3C/script%3E%E2%80%AE%20%00" || len(p.Cluster) != maxIdentity || p.Version != "a%22b" {
		t.Errorf("recorded %+v", p)
	}
}
