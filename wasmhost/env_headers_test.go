package wasmhost

import (
	"slices"
	"strings"
	"testing"

	"switchyard/internal/abi"
)

// Header maps from the guest are decoded by abi.DecodePairs under the host's limits
// (1024 pairs, 1 MiB, as cpp-host's limits.h): over them, or malformed, is BadArgument.
func TestDecodePairsLimits(t *testing.T) {
	many := make([][2]string, maxPairs+1)
	for i := range many {
		many[i] = [2]string{"k", "v"}
	}
	cases := []struct {
		name string
		data string
		want abi.Status
	}{
		{"empty", "", abi.StatusOK},
		{"at the pair limit", abi.EncodePairs(many[:maxPairs]), abi.StatusOK},
		{"over the pair limit", abi.EncodePairs(many), abi.StatusBadArgument},
		{"over the byte limit", abi.EncodePairs([][2]string{{"k", strings.Repeat("v", maxPairsBytes)}}), abi.StatusBadArgument},
		{"malformed", "\x05\x00\x00\x00", abi.StatusBadArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, st := decodePairs([]byte(tc.data)); st != tc.want {
				t.Fatalf("decodePairs = %v, want %v", st, tc.want)
			}
		})
	}
}

// Header map edits follow Envoy: keys lower-cased, add appends, replace keeps the first
// entry's place and drops the others, Get returns the first value.
func TestHeaderEdits(t *testing.T) {
	cases := []struct {
		name string
		edit func(h *Headers)
		want Headers
	}{
		{"add appends", func(h *Headers) { h.add("X-A", "3") }, Headers{{"x-a", "1"}, {"b", "2"}, {"x-a", "1b"}, {"x-a", "3"}}},
		{"replace keeps first place", func(h *Headers) { h.replace("x-a", "9") }, Headers{{"x-a", "9"}, {"b", "2"}}},
		{"replace adds when absent", func(h *Headers) { h.replace("C", "4") }, Headers{{"x-a", "1"}, {"b", "2"}, {"x-a", "1b"}, {"c", "4"}}},
		{"remove drops all", func(h *Headers) { h.remove("X-A") }, Headers{{"b", "2"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := Headers{{"x-a", "1"}, {"b", "2"}, {"x-a", "1b"}}
			tc.edit(&h)
			if !slices.Equal(h, tc.want) {
				t.Fatalf("got %v, want %v", h, tc.want)
			}
		})
	}
	if v, _ := (Headers{{"x-a", "1"}, {"x-a", "2"}}).Get("X-A"); v != "1" {
		t.Errorf("Get = %q, want the first value", v)
	}
	if n := (Headers{{"ab", "cde"}, {"f", ""}}).byteSize(); n != 6 {
		t.Errorf("byteSize = %d, want 6 (bytes, not entries)", n)
	}
}

// Header edits are visible to the embedder; a non-zero result stops the stream.
func TestRequestHeaderActions(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{})
	cases := []struct {
		path      string
		action    Action
		authority string
	}{
		{"/", Continue, "Example.test"},
		{"/route", Continue, "backend:8080"},
		{"/stop", Stop, "Example.test"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			s, a := mustRequest(t, vm, tc.path)
			if a != tc.action {
				t.Errorf("action = %v, want %v", a, tc.action)
			}
			if got, _ := s.RequestHeaderMap().Get(":authority"); got != tc.authority {
				t.Errorf(":authority = %q, want %q", got, tc.authority)
			}
			if got, ok := s.RequestHeaderMap().Get("x-server-name"); !ok || got != "web-1" {
				t.Errorf("x-server-name = %q, %v: keys must be lower-cased and kept", got, ok)
			}
		})
	}
}

// Every status the header-map imports return, from a stream callback (after
// on_request_headers), from the root context, and after the request was continued.
func TestHeaderMapStatuses(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{})
	s := streamWith(t, vm, Headers{{":path", "/x"}, {"X-A", "1"}, {"x-a", "2"}, {":authority", "a"}})
	pathKey, pathLen := guestData(t, vm, ":path")
	absent, absentLen := guestData(t, vm, "x-absent")
	val, valLen := guestData(t, vm, "v")
	outP, outS := outParams(t, vm)
	many := make([][2]string, maxPairs+1)
	for i := range many {
		many[i] = [2]string{"k", "v"}
	}
	tooMany, tooManyLen := guestData(t, vm, abi.EncodePairs(many))
	const (
		req   = uint64(abi.MapRequestHeaders)
		resp  = uint64(abi.MapResponseHeaders)
		call  = uint64(abi.MapHttpCallResponseHeaders)
		bogus = 9
	)
	cases := []struct {
		name   string
		stream *Stream
		fn     string
		args   []uint64
		want   abi.Status
	}{
		{"get present", s, "proxy_get_header_map_value", []uint64{req, pathKey, pathLen, outP, outS}, abi.StatusOK},
		{"get absent", s, "proxy_get_header_map_value", []uint64{req, absent, absentLen, outP, outS}, abi.StatusNotFound},
		{"get response headers during the request", s, "proxy_get_header_map_value", []uint64{resp, pathKey, pathLen, outP, outS}, abi.StatusBadArgument},
		{"get unknown map", s, "proxy_get_header_map_value", []uint64{bogus, pathKey, pathLen, outP, outS}, abi.StatusBadArgument},
		{"get http-call answer outside its callback", s, "proxy_get_header_map_value", []uint64{call, pathKey, pathLen, outP, outS}, abi.StatusNotFound},
		{"get from the root context", nil, "proxy_get_header_map_value", []uint64{req, pathKey, pathLen, outP, outS}, abi.StatusBadArgument},
		{"get key outside memory", s, "proxy_get_header_map_value", []uint64{req, outside, 5, outP, outS}, abi.StatusInvalidMemoryAccess},
		{"pairs of a missing map", s, "proxy_get_header_map_pairs", []uint64{resp, outP, outS}, abi.StatusOK},
		{"pairs of an unknown map", s, "proxy_get_header_map_pairs", []uint64{bogus, outP, outS}, abi.StatusBadArgument},
		{"size", s, "proxy_get_header_map_size", []uint64{req, outP}, abi.StatusOK},
		{"size of a missing map", s, "proxy_get_header_map_size", []uint64{resp, outP}, abi.StatusBadArgument},
		{"replace in the http-call answer", s, "proxy_replace_header_map_value", []uint64{call, pathKey, pathLen, val, valLen}, abi.StatusNotFound},
		{"set pairs over the limit", s, "proxy_set_header_map_pairs", []uint64{req, tooMany, tooManyLen}, abi.StatusBadArgument},
		{"remove absent", s, "proxy_remove_header_map_value", []uint64{req, absent, absentLen}, abi.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusOf(hostcall(t, vm, tc.stream, "env", tc.fn, tc.args...)); got != tc.want {
				t.Fatalf("%s = %v, want %v", tc.fn, got, tc.want)
			}
		})
	}

	hostcall(t, vm, s, "env", "proxy_get_header_map_value", req, pathKey, pathLen, outP, outS)
	if got := readOut(t, vm, outP, outS); got != "/x" {
		t.Errorf("value of :path = %q", got)
	}
	xa, xaLen := guestData(t, vm, "X-A")
	hostcall(t, vm, s, "env", "proxy_get_header_map_value", req, xa, xaLen, outP, outS)
	if got := readOut(t, vm, outP, outS); got != "1" {
		t.Errorf("value of X-A = %q, want the first value, matched lower-case", got)
	}
	hostcall(t, vm, s, "env", "proxy_get_header_map_size", req, outP)
	if got, want := readU32(t, vm, outP), uint32(s.RequestHeaderMap().byteSize()); got != want || got == 4 {
		t.Errorf("size = %d, want the byte size %d, not the entry count", got, want)
	}
	hostcall(t, vm, s, "env", "proxy_get_header_map_pairs", resp, outP, outS)
	if readU32(t, vm, outP) != 0 || readU32(t, vm, outS) != 0 {
		t.Error("a missing map must read as an empty one: (0, 0)")
	}

	// After proxy_continue_stream(request) the request headers are no longer editable.
	if st := statusOf(hostcall(t, vm, s, "env", "proxy_continue_stream", 0)); st != abi.StatusOK {
		t.Fatalf("continue: %v", st)
	}
	if st := statusOf(hostcall(t, vm, s, "env", "proxy_replace_header_map_value", req, pathKey, pathLen, val, valLen)); st != abi.StatusBadArgument {
		t.Errorf("replace after continue = %v, want BadArgument", st)
	}
}

// proxy_set_header_map_pairs replaces the whole map, keys lower-cased.
func TestSetHeaderMapPairs(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{})
	s := streamWith(t, vm, Headers{{":path", "/x"}, {"old", "1"}})
	p, n := guestData(t, vm, abi.EncodePairs([][2]string{{":path", "/y"}, {"New", "2"}}))
	if st := statusOf(hostcall(t, vm, s, "env", "proxy_set_header_map_pairs", uint64(abi.MapRequestHeaders), p, n)); st != abi.StatusOK {
		t.Fatal(st)
	}
	if got, want := s.RequestHeaderMap(), (Headers{{":path", "/y"}, {"new", "2"}}); !slices.Equal(got, want) {
		t.Errorf("map = %v, want %v", got, want)
	}
}
