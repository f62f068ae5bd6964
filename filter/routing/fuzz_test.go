package routing

import (
	"strings"
	"testing"

	"switchyard/internal/abi"
	"switchyard/internal/pluginconfig"
	"switchyard/internal/validate"
)

// FuzzDecide: whatever bytes the host hands over as the request's headers, Decide
// does not panic; it refuses data not in the pairs format, and a decision it takes
// keeps the router's promises: only a path under /sys is touched, a rejection edits
// nothing, a routed request names a valid server and gets exactly the edits of its
// target. Run it for a while with:
//
//	go test -run '^$' -fuzz '^FuzzDecide$' -fuzztime 20s ./filter/routing/
func FuzzDecide(f *testing.F) {
	f.Add([]byte(abi.EncodePairs(get("/sys/x", name("web-1")))))
	f.Add([]byte(abi.EncodePairs(get("/sys?x", name("web-2"), [2]string{":path", "/api"}))))
	f.Add([]byte(abi.EncodePairs([][2]string{{":path", "/sys"}, name("gone")})))
	f.Add([]byte(abi.EncodePairs(get("/system", name("web 1")))))
	f.Add([]byte("\x01\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00"))
	r := New(pluginconfig.Default())
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := r.Decide(string(data), &mapTable{routes: loaded})
		if err != nil {
			if _, perr := abi.DecodePairs(data, 0); perr == nil {
				t.Fatalf("refused headers the codec reads: %v", err)
			}
			return
		}
		pairs, perr := abi.DecodePairs(data, 0)
		if perr != nil {
			return // malformed after the headers the router needs: it stopped before
		}
		path, hasPath := first(pairs, ":path")
		under := hasPath && pluginconfig.MatchesPrefix(path, []string{"/sys"})
		if (d.Outcome == Pass) == under {
			t.Fatalf("outcome %v for :path %q (present %v)", d.Outcome, path, hasPath)
		}
		if d.Outcome != Routed {
			if len(d.Edits()) != 0 {
				t.Fatalf("%v with edits %+v", d.Outcome, d.Edits())
			}
			return
		}
		serverName, _ := first(pairs, "x-server-name")
		target := loaded[serverName]
		if !validate.IsServerName(serverName) || target == "" || serverName != d.ServerName {
			t.Fatalf("routed server name %q (decision %q) to %q", serverName, d.ServerName, target)
		}
		e := d.Edits()
		if len(e) != 2 || e[0].Header != ":authority" || !strings.HasPrefix(e[0].Value, target) || e[1].Header != "x-forwarded-host" {
			t.Fatalf("edits %+v for target %q", e, target)
		}
	})
}

// first is the first value of a header, as proxy_get_header_map_value gives it.
func first(pairs [][2]string, key string) (string, bool) {
	for _, p := range pairs {
		if p[0] == key {
			return p[1], true
		}
	}
	return "", false
}
