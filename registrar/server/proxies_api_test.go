package server

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
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

// writeAnswer is a write's answer with the wait=applied fields.
type writeAnswer struct {
	Result struct {
		Success   bool        `json:"success"`
		Error     string      `json:"error"`
		Revision  uint64      `json:"revision"`
		Applied   *bool       `json:"applied"`
		AppliedBy *int        `json:"appliedBy"`
		Pending   []ProxyView `json:"pending"`
	} `json:"result"`
}

func decodeWrite(t *testing.T, r reply) writeAnswer {
	t.Helper()
	var a writeAnswer
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatalf("%d %s: %v", r.Code, r.Body, err)
	}
	return a
}

func TestWriteWaitApplied(t *testing.T) {
	reg := startRegistrar(t, regOptions{})
	rev := put(t, reg, "web-0", "10.0.0.9")
	lin := reg.Store.Lineage()
	pollAs(t, reg, "edge-a", rev, lin)
	pollAs(t, reg, "edge-b", rev, lin)

	t.Run("answers once both proxies report the revision", func(t *testing.T) {
		done := make(chan reply, 1)
		go func() {
			done <- call(t, "POST", reg.URL+"/api/servers/register?wait=applied&timeout=20s", regBody("web-1", "10.0.0.1", "logs"))
		}()
		waitFor(t, "the write", func() bool { return reg.Store.Current().Revision() > rev })
		next := reg.Store.Current().Revision()
		pollAs(t, reg, "edge-a", next, lin)
		select {
		case r := <-done:
			t.Fatalf("answered before edge-b applied it: %d %s", r.Code, r.Body)
		case <-time.After(200 * time.Millisecond):
		}
		pollAs(t, reg, "edge-b", next, lin)
		select {
		case r := <-done:
			a := decodeWrite(t, r)
			if r.Code != 200 || !a.Result.Success || a.Result.Revision != next || a.Result.Applied == nil || !*a.Result.Applied || *a.Result.AppliedBy != 2 || a.Result.Pending != nil {
				t.Errorf("answer %d %s, want applied by 2 at %d", r.Code, r.Body, next)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no answer 10 s after both proxies applied the write")
		}
	})
	t.Run("at the timeout it names the proxies that have not", func(t *testing.T) {
		cur := reg.Store.Current().Revision()
		pollAs(t, reg, "edge-a", cur, lin)
		pollAs(t, reg, "edge-b", cur, lin)
		start := time.Now()
		r := call(t, "DELETE", reg.URL+"/api/servers/web-1?wait=applied&timeout=300ms", "")
		a := decodeWrite(t, r)
		if took := time.Since(start); took < 300*time.Millisecond || took > 5*time.Second {
			t.Errorf("answered after %v, want the 300 ms timeout", took)
		}
		if r.Code != 200 || !a.Result.Success || *a.Result.Applied || *a.Result.AppliedBy != 0 || len(a.Result.Pending) != 2 ||
			a.Result.Pending[0].Proxy != "edge-a" || a.Result.Pending[1].RevisionsBehind != 1 {
			t.Errorf("answer %d %s, want applied false naming edge-a and edge-b, 1 behind", r.Code, r.Body)
		}
		if _, ok := reg.Store.Current().Get("web-1"); ok {
			t.Error("the delete did not happen")
		}
	})
	t.Run("PUT waits too", func(t *testing.T) {
		r := call(t, "PUT", reg.URL+"/api/servers/web-2?wait=applied&timeout=0.2", `{"ipAddress":"10.0.0.2","serviceName":"logs"}`)
		if a := decodeWrite(t, r); r.Code != 200 || a.Result.Applied == nil || *a.Result.Applied || len(a.Result.Pending) != 2 {
			t.Errorf("answer %d %s", r.Code, r.Body)
		}
	})
	t.Run("without wait=applied a write does not wait and says nothing of proxies", func(t *testing.T) {
		r := call(t, "POST", reg.URL+"/api/servers/register", regBody("web-3", "10.0.0.3", "logs"))
		if a := decodeWrite(t, r); r.Code != 200 || a.Result.Applied != nil || a.Result.AppliedBy != nil || strings.Contains(string(r.Body), "pending") {
			t.Errorf("answer %d %s", r.Code, r.Body)
		}
	})
	t.Run("bad values are refused before anything is written", func(t *testing.T) {
		before := reg.Store.Current().Revision()
		for _, c := range []struct{ method, path, field string }{
			{"POST", "/api/servers/register?wait=yes", "wait:"},
			{"POST", "/api/servers/register?timeout=5s", "timeout:"},
			{"POST", "/api/servers/register?wait=applied&timeout=61s", "timeout:"},
			{"POST", "/api/servers/register?wait=applied&timeout=0", "timeout:"},
			{"POST", "/api/servers/register?wait=applied&timeout=-1s", "timeout:"},
			{"POST", "/api/servers/register?wait=applied&timeout=soon", "timeout:"},
			{"PUT", "/api/servers/web-4?wait=applied&timeout=NaN", "timeout:"},
			{"DELETE", "/api/servers/web-3?wait=later", "wait:"},
		} {
			r := call(t, c.method, reg.URL+c.path, regBody("web-4", "10.0.0.4", "logs"))
			if res := r.Result(t); r.Code != 400 || !strings.HasPrefix(res.Error, c.field) {
				t.Errorf("%s %s: %d %q, want 400 naming %s", c.method, c.path, r.Code, res.Error, c.field)
			}
		}
		if got := reg.Store.Current().Revision(); got != before {
			t.Errorf("revision moved from %d to %d", before, got)
		}
	})
}

// waitFor polls cond (a test-side check of state the test cannot be told about) for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
