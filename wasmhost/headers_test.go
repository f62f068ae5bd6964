package wasmhost

import (
	"slices"
	"testing"
)

// The pairs format round-trips, and malformed input is refused instead of read past.
func TestPairsSerialization(t *testing.T) {
	cases := []struct {
		name string
		in   Headers
	}{
		{"empty", nil},
		{"one", Headers{{":path", "/sys"}}},
		{"empty value and repeats", Headers{{"a", ""}, {"a", "2"}, {"x-long", "value with spaces"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parsePairs(tc.in.appendPairs(nil))
			if !ok || !slices.Equal(Headers(got), tc.in) {
				t.Fatalf("round trip of %v = %v, %v", tc.in, got, ok)
			}
		})
	}
	bad := map[string][]byte{
		"count beyond data": {5, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0},
		"missing NUL":       append(Headers{{"k", "v"}}.appendPairs(nil)[:14], 'x', 'x'),
		"too short":         {1, 0},
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			if _, ok := parsePairs(b); ok {
				t.Fatalf("parsePairs accepted %v", b)
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
