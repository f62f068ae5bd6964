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
