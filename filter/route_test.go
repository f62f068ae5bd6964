package main

import (
	"strings"
	"testing"
)

// mapTable is the Table of a test: nil routes means "not loaded".
type mapTable struct {
	routes  map[string]string
	lookups int
}

func (m *mapTable) Lookup(name string) (string, bool) {
	m.lookups++
	t, ok := m.routes[name]
	return t, ok && t != ""
}
func (m *mapTable) Loaded() bool { return m.routes != nil }

func TestDecide(t *testing.T) {
	loaded := map[string]string{
		"web-1":  "10.1.2.3:8080",
		"web-2":  "10.1.2.4",
		"v6":     "[2001:db8::1]",
		"v6port": "[2001:db8::1]:9000",
		"dns":    "logs.internal",
		"gone":   "", // deleted: written empty
	}
	tests := []struct {
		name      string
		header    string
		routes    map[string]string
		want      Outcome
		authority string
	}{
		{"missing header", "", loaded, Missing, ""},
		{"missing header before load", "", nil, Missing, ""},
		{"invalid name", "web 1", loaded, Invalid, ""},
		{"invalid name slash", "../etc", loaded, Invalid, ""},
		{"invalid name too long", strings.Repeat("a", 101), loaded, Invalid, ""},
		{"invalid before load", "a/b", nil, Invalid, ""},
		{"not loaded", "web-1", nil, NotLoaded, ""},
		{"unknown", "web-9", loaded, Unknown, ""},
		{"case matters", "WEB-1", loaded, Unknown, ""},
		{"deleted", "gone", loaded, Unknown, ""},
		{"routed with port", "web-1", loaded, Routed, "10.1.2.3:8080"},
		{"routed default port", "web-2", loaded, Routed, "10.1.2.4:80"},
		{"routed IPv6 default port", "v6", loaded, Routed, "[2001:db8::1]:80"},
		{"routed IPv6 with port", "v6port", loaded, Routed, "[2001:db8::1]:9000"},
		{"routed DNS", "dns", loaded, Routed, "logs.internal:80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := &mapTable{routes: tt.routes}
			got, auth := Decide(tt.header, tab, 80)
			if got != tt.want || auth != tt.authority {
				t.Errorf("Decide(%q) = %v %q, want %v %q", tt.header, got, auth, tt.want, tt.authority)
			}
			if tab.lookups > 1 {
				t.Errorf("looked up %d times, want at most once", tab.lookups)
			}
		})
	}
}

func TestRejections(t *testing.T) {
	tests := []struct {
		o      Outcome
		status uint32
		code   string
		body   string
	}{
		{Missing, 400, "missing_server_name", `{"error":"missing_server_name","message":"The x-server-name header is required`},
		{Invalid, 400, "invalid_server_name", `{"error":"invalid_server_name","message":"The x-server-name header must be`},
		{NotLoaded, 503, "routes_not_loaded", `{"error":"routes_not_loaded","message":"`},
		{Unknown, 404, "unknown_server", `{"error":"unknown_server","message":"Server 'web-9' is not registered"}`},
	}
	for _, tt := range tests {
		if tt.o.Status() != tt.status || tt.o.Code() != tt.code {
			t.Errorf("%v: status %d code %q, want %d %q", tt.o, tt.o.Status(), tt.o.Code(), tt.status, tt.code)
		}
		body := string(replyBody(tt.o, "x-server-name", "web-9"))
		if !strings.HasPrefix(body, tt.body) || !strings.HasSuffix(body, `"}`) {
			t.Errorf("%v: body %s, want it to start with %s", tt.o, body, tt.body)
		}
	}
}

func TestAuthority(t *testing.T) {
	tests := []struct{ target, want string }{
		{"10.0.0.1", "10.0.0.1:8080"},
		{"10.0.0.1:9", "10.0.0.1:9"},
		{"[::1]", "[::1]:8080"},
		{"[::1]:9", "[::1]:9"},
		{"h.example", "h.example:8080"},
		{"h.example:1", "h.example:1"},
	}
	for _, tt := range tests {
		if got := Authority(tt.target, 8080); got != tt.want {
			t.Errorf("Authority(%q) = %q, want %q", tt.target, got, tt.want)
		}
	}
}
