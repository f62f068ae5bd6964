package routing

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"switchyard/internal/abi"
	"switchyard/internal/contract"
	"switchyard/internal/pluginconfig"
)

// mapTable is the Table of a test: nil routes means "not loaded"; a name mapped to ""
// is one that was removed (shared data keeps it as an empty value).
type mapTable struct {
	routes          map[string]string
	lookups, checks int
}

func (m *mapTable) Lookup(serverName string) (string, bool) {
	m.lookups++
	t, ok := m.routes[serverName]
	return t, ok && t != ""
}

func (m *mapTable) Loaded() bool {
	m.checks++
	return m.routes != nil
}

var loaded = map[string]string{
	"web-1":  "10.1.2.3:8080",
	"web-2":  "10.1.2.4",
	"v6":     "[2001:db8::1]",
	"v6port": "[2001:db8::1]:9000",
	"dns":    "logs.internal",
	"gone":   "",
	"long":   strings.Repeat("a", 120), // longer than the sync accepts: still answered right
}

// get is a client's GET of path with the given extra headers, as a host lists them.
func get(path string, extra ...[2]string) [][2]string {
	h := [][2]string{{":method", "GET"}, {":scheme", "https"}, {":path", path}, {":authority", "proxy.example:8443"}}
	return append(h, extra...)
}

func name(serverName string) [2]string { return [2]string{"x-server-name", serverName} }

func routedEdits(authority string) []HeaderEdit {
	return []HeaderEdit{{Header: ":authority", Value: authority}, {Header: "x-forwarded-host", Value: "proxy.example:8443"}}
}

func TestDecide(t *testing.T) {
	defaults := pluginconfig.Default()
	strip := pluginconfig.Default()
	strip.StripHeader, strip.Header, strip.PathPrefixes = true, "x-target", []string{"/logs", "/sys"}
	tests := []struct {
		name    string
		cfg     pluginconfig.Config
		headers [][2]string
		routes  map[string]string
		want    Outcome
		edits   []HeaderEdit
	}{
		// Which paths the router takes.
		{"other path passes", defaults, get("/api/servers", name("web-1")), loaded, Pass, nil},
		{"prefix is segment-wise", defaults, get("/system/x", name("web-1")), loaded, Pass, nil},
		{"shorter path passes", defaults, get("/sy", name("web-1")), loaded, Pass, nil},
		{"prefix is case-sensitive", defaults, get("/SYS/x", name("web-1")), loaded, Pass, nil},
		{"no :path passes", defaults, [][2]string{{":authority", "p"}, name("web-1")}, loaded, Pass, nil},
		{"empty header map passes", defaults, nil, loaded, Pass, nil},
		{"pass before any table", defaults, get("/api"), nil, Pass, nil},
		{"bare prefix", defaults, get("/sys", name("web-1")), loaded, Routed, routedEdits("10.1.2.3:8080")},
		{"prefix with slash", defaults, get("/sys/", name("web-1")), loaded, Routed, routedEdits("10.1.2.3:8080")},
		{"query right after prefix", defaults, get("/sys?x=1", name("web-1")), loaded, Routed, routedEdits("10.1.2.3:8080")},
		{"second configured prefix", strip, get("/logs/a", [2]string{"x-target", "web-1"}), loaded, Routed,
			append(routedEdits("10.1.2.3:8080"), HeaderEdit{Header: "x-target", Remove: true})},

		// Rejections, in the order they are checked.
		{"missing header", defaults, get("/sys/x"), loaded, MissingServerName, nil},
		{"empty header is missing", defaults, get("/sys/x", name("")), loaded, MissingServerName, nil},
		{"missing before any table", defaults, get("/sys/x"), nil, MissingServerName, nil},
		{"header of another name is missing", strip, get("/sys/x", name("web-1")), loaded, MissingServerName, nil},
		{"invalid name", defaults, get("/sys/x", name("web 1")), loaded, InvalidServerName, nil},
		{"invalid name with a slash", defaults, get("/sys/x", name("../etc")), loaded, InvalidServerName, nil},
		{"invalid name too long", defaults, get("/sys/x", name(strings.Repeat("a", 101))), loaded, InvalidServerName, nil},
		{"invalid before any table", defaults, get("/sys/x", name("a/b")), nil, InvalidServerName, nil},
		{"not loaded", defaults, get("/sys/x", name("web-1")), nil, RoutesNotLoaded, nil},
		{"unknown", defaults, get("/sys/x", name("web-9")), loaded, UnknownServer, nil},
		{"names are case-sensitive", defaults, get("/sys/x", name("WEB-1")), loaded, UnknownServer, nil},
		{"removed name is unknown", defaults, get("/sys/x", name("gone")), loaded, UnknownServer, nil},
		{"unknown in an empty table", defaults, get("/sys/x", name("web-1")), map[string]string{}, UnknownServer, nil},

		// The edits of a routed request.
		{"target with its port", defaults, get("/sys/x", name("web-1")), loaded, Routed, routedEdits("10.1.2.3:8080")},
		{"default port added", defaults, get("/sys/x", name("web-2")), loaded, Routed, routedEdits("10.1.2.4:80")},
		{"IPv6 default port", defaults, get("/sys/x", name("v6")), loaded, Routed, routedEdits("[2001:db8::1]:80")},
		{"IPv6 with port", defaults, get("/sys/x", name("v6port")), loaded, Routed, routedEdits("[2001:db8::1]:9000")},
		{"DNS target", defaults, get("/sys/x", name("dns")), loaded, Routed, routedEdits("logs.internal:80")},
		{"target past the buffer gets its port", defaults, get("/sys/x", name("long")), loaded, Routed, routedEdits(strings.Repeat("a", 120) + ":80")},
		{"client x-forwarded-host replaced", defaults, get("/sys/x", name("web-1"), [2]string{"x-forwarded-host", "evil.example"}), loaded, Routed,
			routedEdits("10.1.2.3:8080")},
		{"no authority: x-forwarded-host removed", defaults, [][2]string{{":path", "/sys/x"}, name("web-1")}, loaded, Routed,
			[]HeaderEdit{{Header: ":authority", Value: "10.1.2.3:8080"}, {Header: "x-forwarded-host", Remove: true}}},
		{"first of repeated headers counts", defaults,
			[][2]string{{":path", "/sys/x"}, {":authority", "a.example"}, name("web-1"), {":path", "/api"}, {":authority", "b.example"}, name("web-2")}, loaded, Routed,
			[]HeaderEdit{{Header: ":authority", Value: "10.1.2.3:8080"}, {Header: "x-forwarded-host", Value: "a.example"}}},
		{"strip_header removes the header", strip, get("/sys/x", [2]string{"x-target", "v6"}), loaded, Routed,
			append(routedEdits("[2001:db8::1]:80"), HeaderEdit{Header: "x-target", Remove: true})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := &mapTable{routes: tt.routes}
			d, err := New(tt.cfg).Decide(abi.EncodePairs(tt.headers), tab)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if d.Outcome != tt.want {
				t.Errorf("outcome %v, want %v", d.Outcome, tt.want)
			}
			if got := d.Edits(); !reflect.DeepEqual(got, tt.edits) && (len(got) != 0 || len(tt.edits) != 0) {
				t.Errorf("edits %+v, want %+v", got, tt.edits)
			}
			if tab.lookups > 1 || d.Outcome == Routed && tab.checks > 0 {
				t.Errorf("%d lookups and %d loaded checks; a request reads the table once, twice only to tell 503 from 404", tab.lookups, tab.checks)
			}
		})
	}
}

func TestDecideRefusesMalformedHeaders(t *testing.T) {
	good := abi.EncodePairs(get("/sys/x", name("web-1")))
	for name, data := range map[string]string{
		"short count":        "\x01\x00",
		"count past the end": "\x09\x00\x00\x00" + good[4:],
		"truncated":          good[:len(good)-3],
	} {
		if _, err := New(pluginconfig.Default()).Decide(data, &mapTable{routes: loaded}); !errors.Is(err, abi.ErrMalformedPairs) {
			t.Errorf("%s: err %v, want abi.ErrMalformedPairs", name, err)
		}
	}
}

func TestRejections(t *testing.T) {
	r := New(pluginconfig.Default())
	tests := []struct {
		o       Outcome
		status  uint32
		code    string
		body    string
		headers [][2]string
	}{
		{MissingServerName, 400, contract.CodeMissingServerName,
			`{"error":"missing_server_name","message":"The x-server-name header is required on this path; set it to the name of a registered server"}`,
			[][2]string{{"content-type", "application/json"}}},
		{InvalidServerName, 400, contract.CodeInvalidServerName,
			`{"error":"invalid_server_name","message":"The x-server-name header must be 1-100 characters of letters, digits, '.', '_' or '-'"}`,
			[][2]string{{"content-type", "application/json"}}},
		{RoutesNotLoaded, 503, contract.CodeRoutesNotLoaded,
			`{"error":"routes_not_loaded","message":"The route table has not been loaded from the registrar yet; retry in a second"}`,
			[][2]string{{"content-type", "application/json"}, {"retry-after", "1"}}},
		{UnknownServer, 404, contract.CodeUnknownServer,
			`{"error":"unknown_server","message":"Server 'web-9' is not registered"}`,
			[][2]string{{"content-type", "application/json"}}},
	}
	for _, tt := range tests {
		if !tt.o.Rejected() || tt.o.Status() != tt.status || tt.o.Code() != tt.code || tt.o.String() != tt.code {
			t.Errorf("%v: rejected %v status %d code %q, want a rejection %d %q", tt.o, tt.o.Rejected(), tt.o.Status(), tt.o.Code(), tt.status, tt.code)
		}
		if got := string(r.AppendReplyBody(nil, &Decision{Outcome: tt.o, ServerName: "web-9"})); got != tt.body {
			t.Errorf("%v: body %s, want %s", tt.o, got, tt.body)
		}
		if got := tt.o.ReplyHeaders(); !reflect.DeepEqual(got, tt.headers) {
			t.Errorf("%v: reply headers %q, want %q", tt.o, got, tt.headers)
		}
	}
	for _, o := range []Outcome{Pass, Routed} {
		if o.Rejected() || o.Status() != 0 || o.Code() != "" {
			t.Errorf("%v: rejected %v status %d code %q, want none", o, o.Rejected(), o.Status(), o.Code())
		}
	}
}

// A decision allocates nothing, whatever its outcome, including a target that gets the
// default port added: the router's hot path stays free of garbage in the VM.
func TestDecideAllocatesNothing(t *testing.T) {
	cfg := pluginconfig.Default()
	cfg.StripHeader = true
	r := New(cfg)
	tab := &mapTable{routes: loaded}
	for _, serverName := range []string{"web-1", "web-2", "web-9", "bad name", ""} {
		headers := abi.EncodePairs(get("/sys/logs/app.log?tail=100", name(serverName)))
		var last Decision
		allocs := testing.AllocsPerRun(100, func() {
			d, err := r.Decide(headers, tab)
			if err != nil {
				t.Fatal(err)
			}
			last = *d
		})
		if allocs != 0 {
			t.Errorf("%q: %v allocations per decision (%v), want 0", serverName, allocs, last.Outcome)
		}
	}
}

// The authority buffer is reused: a decision's :authority is valid until the next
// Decide, and the next one does not corrupt a target that needs no port.
func TestDecideReusesTheAuthorityBuffer(t *testing.T) {
	r := New(pluginconfig.Default())
	tab := &mapTable{routes: loaded}
	for _, tt := range []struct{ serverName, authority string }{
		{"dns", "logs.internal:80"}, {"web-2", "10.1.2.4:80"}, {"web-1", "10.1.2.3:8080"}, {"v6", "[2001:db8::1]:80"},
	} {
		d, _ := r.Decide(abi.EncodePairs(get("/sys", name(tt.serverName))), tab)
		if got := d.Edits()[0].Value; got != tt.authority {
			t.Errorf("%s: :authority %q, want %q", tt.serverName, got, tt.authority)
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	r := New(pluginconfig.Default())
	tab := &mapTable{routes: loaded}
	headers := abi.EncodePairs(get("/sys/logs/app.log?tail=100", [2]string{"user-agent", "Mozilla/5.0"},
		[2]string{"accept", "application/json"}, name("web-1")))
	b.ReportAllocs()
	for b.Loop() {
		if d, _ := r.Decide(headers, tab); d.Outcome != Routed {
			b.Fatal(d.Outcome)
		}
	}
}
