package devproxy

import (
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
)

// The name caches are shortcuts only: every answer must be the one the standard
// library gives, for common names, names the client sent and names nobody knows.
func TestNamesMatchTheStandardLibrary(t *testing.T) {
	in := http.Header{"X-Tenant-Id": {"a"}, "X_odd": {"b"}, "Foo.bar": {"c"}}
	cases := []struct{ what, name string }{
		{"common request name", "User-Agent"},
		{"common response name", "Content-Type"},
		{"filter-set name", "X-Forwarded-Host"},
		{"name the client sent", "X-Tenant-Id"},
		{"name with an underscore", "X_odd"},
		{"name with a dot", "Foo.bar"},
		{"unknown name", "X-Something-New"},
		{"lower-case unknown name", "x-all-lower"},
		{"digits", "X-B3-Traceid"},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			lower := strings.ToLower(c.name)
			if got := lowerName(c.name); got != lower {
				t.Errorf("lowerName(%q) = %q, want %q", c.name, got, lower)
			}
			// Both ways of finding the name: scanning a few inbound keys, and the
			// index built when there are many.
			many := in.Clone()
			for i := 0; i <= scanLimit; i++ {
				many.Set("X-Filler-"+strconv.Itoa(i), "v")
			}
			for _, hdr := range []http.Header{in, many} {
				if got, want := canonicalNames(hdr).canonical(lower), textproto.CanonicalMIMEHeaderKey(lower); got != want {
					t.Errorf("canonical(%q) with %d inbound keys = %q, want %q", lower, len(hdr), got, want)
				}
			}
		})
	}
}

func TestStatusText(t *testing.T) {
	for _, code := range []int{0, 99, 100, 200, 404, 503, 599, 600, 999} {
		if got, want := statusValue(code), strconv.Itoa(code); got != want {
			t.Errorf("statusText(%d) = %q, want %q", code, got, want)
		}
	}
}
