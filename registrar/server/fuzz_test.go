package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"switchyard/internal/targetpolicy"
	"switchyard/internal/validate"
	"switchyard/registrar/store"
)

// FuzzWrite sends arbitrary bodies to the two writes that take a registration,
// POST /api/servers/register and PUT /api/servers/{host}, through the real handler
// and a real store. Nothing may panic; a refusal is a 4xx in the result shape that
// says what was wrong and changes nothing; an acceptance must be a registration
// the name and address rules allow (checkRegistration, for ipAddress and every
// target), stored exactly as sent. Run it for longer with:
//
//	go test -run '^$' -fuzz '^FuzzWrite$' -fuzztime 30s ./registrar/server/
//
// Inputs the fuzzer found are kept in testdata/fuzz/FuzzWrite/ and run by every
// `go test` as regression cases.
func FuzzWrite(f *testing.F) {
	seeds := []struct {
		put  bool
		host string
		body string
	}{
		{false, "", regBody("web-1", "10.1.2.3:8080", "logs")},
		{false, "", regBody("v6", "[2001:db8::1]:9000", "로그")},
		{false, "", `{"host":"a","ipAddress":"h","serviceName":"s","host":"b"}`},
		{false, "", `{"host":"a","ipAddress":"999.1.1.1","serviceName":"s"}`},
		{false, "", `{"host":"a","ipAddress":"10.1.2.3:080","serviceName":"s"}`},
		{false, "", `{"host":"a\r\n","ipAddress":"10.1.2.3","serviceName":"s"}`},
		{false, "", `{"host":"ａ","ipAddress":"10.1.2.3","serviceName":"s"}`},
		{false, "", `{"host":"a","ipAddress":"169.254.169.254","serviceName":"s"}`},
		{false, "", `{"host":"a","ipAddress":"0x7f000001","serviceName":"s"}`},
		{false, "", `{"host":"a","ipAddress":"10.1.2.3","serviceName":"\u2028"}`},
		{false, "", `{"host":"a","ipAddress":"10.1.2.3","serviceName":"s"} x`},
		{false, "", "{\"host\":\"\xff\",\"ipAddress\":\"10.1.2.3\",\"serviceName\":\"s\"}"},
		{false, "", `[{"host":"a"}]`},
		{false, "", `{"host":1}`},
		{false, "", ``},
		{true, "web-2", `{"ipAddress":"10.1.2.4","serviceName":"logs"}`},
		{true, "web-2", `{"host":"web-3","ipAddress":"10.1.2.4","serviceName":"logs"}`},
		{true, "register", `{"ipAddress":"10.1.2.4","serviceName":"logs"}`},
		{true, "..", `{"ipAddress":"10.1.2.4","serviceName":"logs"}`},
		{false, "", `{"host":"..","ipAddress":"10.1.2.3","serviceName":"s"}`},
		{true, "a/b", `{"ipAddress":"10.1.2.4","serviceName":"logs"}`},
		{true, "web\x00", `{"ipAddress":"10.1.2.4","serviceName":"logs"}`},
		{false, "", `{"host":"a","serviceName":"s","targets":[{"address":"10.1.2.3:80","weight":90},{"address":"10.1.2.4","weight":10,"state":"draining"}]}`},
		{true, "web-2", `{"ipAddress":"10.1.2.4","serviceName":"logs","targets":[{"address":"10.1.2.4"},{"address":"[2001:db8::1]:9000","weight":0}]}`},
		{false, "", `{"host":"a","serviceName":"s","targets":[{"address":"10.1.2.3","weight":1.0}]}`},
		{false, "", `{"host":"a","serviceName":"s","targets":[{"address":"10.1.2.3"},{"address":"10.1.2.3"}]}`},
		{false, "", `{"host":"a","serviceName":"s","targets":[{"address":"169.254.169.254","state":"active"}]}`},
		{false, "", `{"host":"a","serviceName":"s","targets":[{"address":"10.1.2.3","state":"draining"}]}`},
	}
	for _, s := range seeds {
		f.Add(s.put, s.host, []byte(s.body))
	}
	srv, err := newServer(f, Config{}, filepath.Join(f.TempDir(), "servers.json"))
	if err != nil {
		f.Fatal(err)
	}
	h, st := srv.Handler(), srv.Store()

	f.Fuzz(func(t *testing.T, put bool, pathHost string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/servers/register", strings.NewReader(string(body)))
		if put {
			req = httptest.NewRequest(http.MethodPut, "/api/servers/"+url.PathEscape(pathHost), strings.NewReader(string(body)))
		}
		// As the page and API clients send it (the browser guards are tested apart).
		req.Host = "127.0.0.1:9000"
		req.Header.Set("Content-Type", "application/json")
		before := st.Current()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		after := st.Current()

		if loc := rec.Header().Get("Location"); rec.Code/100 == 3 && loc != "" {
			// A path with "." or ".." segments or "//": the mux redirects to the
			// cleaned path before any handler runs, which must change nothing.
			if after.Revision() != before.Revision() {
				t.Fatalf("a redirected request moved the revision from %d to %d", before.Revision(), after.Revision())
			}
			return
		}
		var env struct {
			Result *struct {
				Success bool
				Error   string
				Server  *store.Server
			}
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Result == nil {
			t.Fatalf("answer %d is not in the result shape: %v: %s", rec.Code, err, rec.Body)
		}
		res := env.Result
		if rec.Code != http.StatusOK {
			if rec.Code < 400 || rec.Code > 499 || res.Success {
				t.Fatalf("refusal answered %d success=%v: %s", rec.Code, res.Success, rec.Body)
			}
			if !refusalSaysWhat.MatchString(res.Error) {
				t.Fatalf("refusal %q does not say which field or what about the body was wrong", res.Error)
			}
			if after.Revision() != before.Revision() {
				t.Fatalf("a refused write moved the revision from %d to %d", before.Revision(), after.Revision())
			}
			return
		}
		fields := acceptedFields(t, body, put)
		host := fields["host"]
		if put {
			host = req.PathValue("host")
			if h, ok := fields["host"]; ok && h != host {
				t.Fatalf("PUT %q accepted a body naming host %q", host, h)
			}
		}
		got, ok := after.Get(host)
		if !ok || got.Service != fields["serviceName"] {
			t.Fatalf("accepted %s for %q but the table holds %+v", body, host, got)
		}
		if ip, given := fields["ipAddress"]; given {
			checkRegistration(t, host, ip, fields["serviceName"])
			if got.Target != ip {
				t.Fatalf("accepted ipAddress %q for %q but the table holds %+v", ip, host, got)
			}
		}
		want := []store.Target{{Address: fields["ipAddress"], Weight: 1, State: store.StateActive}}
		if targets, given := fields["targets"]; given {
			want = acceptedTargets(t, targets)
		}
		active := false
		for _, tg := range want {
			checkRegistration(t, host, tg.Address, fields["serviceName"])
			active = active || tg.State == store.StateActive && tg.Weight > 0
		}
		if !active {
			t.Fatalf("accepted %s: no active target, without allowNoActive", body)
		}
		if list := got.TargetList(); !slices.Equal(list, want) {
			t.Fatalf("accepted %s for %q but the table holds %+v", body, host, list)
		}
	})
}

// acceptedTargets decodes an accepted targets array with encoding/json and requires
// what the API promises: 1–64 targets of distinct addresses, weights 0–100 (default
// 1), states active (default) or draining.
func acceptedTargets(t *testing.T, raw string) []store.Target {
	t.Helper()
	var list []struct {
		Address string
		Weight  *json.Number
		State   *string
	}
	if err := json.Unmarshal([]byte(raw), &list); err != nil || len(list) < 1 || len(list) > 64 {
		t.Fatalf("accepted targets %s (%v)", raw, err)
	}
	var out []store.Target
	for _, e := range list {
		tg := store.Target{Address: e.Address, Weight: 1, State: store.StateActive}
		if e.Weight != nil {
			w, err := strconv.Atoi(string(*e.Weight))
			if err != nil || w < 0 || w > 100 {
				t.Fatalf("accepted weight %s in %s", *e.Weight, raw)
			}
			tg.Weight = w
		}
		if e.State != nil {
			if *e.State != store.StateActive && *e.State != store.StateDraining {
				t.Fatalf("accepted state %q in %s", *e.State, raw)
			}
			tg.State = *e.State
		}
		if slices.ContainsFunc(out, func(u store.Target) bool { return u.Address == tg.Address }) {
			t.Fatalf("accepted the address %q twice in %s", tg.Address, raw)
		}
		out = append(out, tg)
	}
	return out
}

// refusalSaysWhat matches a message that names the field at fault or the problem with
// the body as a whole.
var refusalSaysWhat = regexp.MustCompile(`^(host|ipAddress|serviceName): |^targets(\[\d+\](\.(address|weight|state))?)?: |field|request body|invalid JSON|JSON object|` +
	`not allowed here; use POST|no such endpoint`) // PUT /api/servers/register and PUT /api/servers/

// acceptedFields decodes an accepted body with encoding/json, independently of
// decodeObject, and requires exactly the fields the write takes, each a string but
// targets (returned as its JSON text); ipAddress is required unless targets is given.
func acceptedFields(t *testing.T, body []byte, put bool) map[string]string {
	t.Helper()
	if !utf8.Valid(body) || !json.Valid(body) {
		t.Fatalf("accepted a body that is not valid UTF-8 JSON: %q", body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("accepted a body that is not a JSON object: %q: %v", body, err)
	}
	_, hasTargets := raw["targets"]
	want := map[string]bool{"host": !put, "ipAddress": !hasTargets, "serviceName": true, "targets": false} // name → required
	out := map[string]string{}
	for k, v := range raw {
		if _, known := want[k]; !known {
			t.Fatalf("accepted unknown field %q in %q", k, body)
		}
		if k == "targets" {
			out[k] = string(v)
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			t.Fatalf("accepted non-string field %q = %s", k, v)
		}
		out[k] = s
	}
	for k, required := range want {
		if _, ok := out[k]; required && !ok {
			t.Fatalf("accepted %q without the required field %q", body, k)
		}
	}
	return out
}

// checkRegistration holds an accepted registration to the API's rules (a name of
// 1–100 characters of A-Z a-z 0-9 . _ -; an IPv4, [IPv6] or RFC 1123 DNS address with
// an optional port, at most 100 characters; a service name), written here without
// the registrar's own checks.
func checkRegistration(t *testing.T, name, target, service string) {
	t.Helper()
	if !regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`).MatchString(name) || name == reservedName || name == "." || name == ".." {
		t.Fatalf("accepted host %q", name)
	}
	a, err := validate.ParseAddress(target)
	if err != nil {
		t.Fatalf("accepted ipAddress %q: %v", target, err)
	}
	if a.IsIP() && targetpolicy.Special(a.IP) != "" {
		t.Fatalf("accepted the special address %q with no -allow-cidr", target)
	}
	if _, special := targetpolicy.NameStandsFor(a.Host); special || strings.HasSuffix(strings.ToLower(a.Host), ".localhost") {
		t.Fatalf("accepted the loopback or metadata name %q with no -allow-cidr", target)
	}
	n := utf8.RuneCountInString(service)
	if n < 1 || n > 100 || strings.TrimSpace(service) == "" {
		t.Fatalf("accepted serviceName %q (%d characters)", service, n)
	}
	for _, r := range service {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError {
			t.Fatalf("accepted serviceName %q holding %U", service, r)
		}
	}
}
