package wasmhost

import (
	"testing"

	"switchyard/internal/abi"
	"switchyard/internal/contract"
)

// Properties the filter reads: plugin_* everywhere, request attributes from the
// request headers and stream attributes, NotFound (1) for anything unknown.
func TestProperties(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{VMID: "vm-p"})
	cases := []struct{ name, want string }{
		{"plugin_vm_id", "plugin_vm_id=vm-p status=0"},
		{"plugin_root_id", "plugin_root_id=" + contract.RootRouter + " status=0"},
		{"request.path", "request.path=/prop?name=request.path status=0"},
		{"request.url_path", "request.url_path=/prop status=0"},
		{"request.method", "request.method=GET status=0"},
		{"request.host", "request.host=Example.test status=0"},
		{"request.scheme", "request.scheme=http status=0"},
		{"request.id", "request.id=req-1 status=0"},
		{"source.address", "source.address=10.0.0.7:41000 status=0"},
		{"node", "node= status=1"}, // removed in Envoy 1.33
		{"no.such.thing", "no.such.thing= status=1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustRequest(t, vm, "/prop?name="+tc.name)
			got := logLines(h, "prop "+tc.name+"=")
			if len(got) != 1 || got[0] != "prop "+tc.want {
				t.Fatalf("got %q, want %q", got, "prop "+tc.want)
			}
		})
	}
}

// xds.node.id and xds.node.cluster are Options.Node's strings, raw; unset they are Ok and
// empty (a proto3 string's default, as Envoy without --service-node). node.* is NotFound
// (Envoy 1.33 moved the node under xds), and so is xds.node itself (a serialized
// protobuf in Envoy, not served here).
func TestNodeProperties(t *testing.T) {
	for _, tc := range []struct {
		node       Node
		id, clustr string
	}{
		{Node{ID: "edge-1", Cluster: "edge"}, "xds.node.id=edge-1 status=0", "xds.node.cluster=edge status=0"},
		{Node{}, "xds.node.id= status=0", "xds.node.cluster= status=0"},
	} {
		t.Run(tc.node.ID, func(t *testing.T) {
			h := newHost(t, Options{Node: tc.node})
			vm := startProbe(t, h, PluginConfig{VMID: "vm-n"})
			for name, want := range map[string]string{
				"xds.node.id":       tc.id,
				"xds.node.cluster":  tc.clustr,
				"xds.node":          "xds.node= status=1",
				"xds.node.locality": "xds.node.locality= status=1",
				"node.id":           "node.id= status=1",
				"node.cluster":      "node.cluster= status=1",
			} {
				mustRequest(t, vm, "/prop?name="+name)
				got := logLines(h, "prop "+name+"=")
				if len(got) != 1 || got[0] != "prop "+want {
					t.Fatalf("%s: got %q, want %q", name, got, "prop "+want)
				}
			}
		})
	}
}

// proxy_set_property stores a value the same context reads back; a stream's values
// are its own, the root context's are seen from streams as a fallback.
func TestSetProperty(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{})
	s := streamWith(t, vm, Headers{{":path", "/x"}})
	other := streamWith(t, vm, Headers{{":path", "/y"}})
	key, keyLen := guestData(t, vm, "my_key")
	sv, svLen := guestData(t, vm, "stream value")
	rv, rvLen := guestData(t, vm, "root value")
	outP, outS := outParams(t, vm)
	get := func(s *Stream) (abi.Status, string) {
		st := statusOf(hostcall(t, vm, s, "env", "proxy_get_property", key, keyLen, outP, outS))
		if st != abi.StatusOK {
			return st, ""
		}
		return st, readOut(t, vm, outP, outS)
	}
	if st, _ := get(s); st != abi.StatusNotFound {
		t.Fatalf("before any set: %v, want NotFound", st)
	}
	if st := statusOf(hostcall(t, vm, s, "env", "proxy_set_property", key, keyLen, sv, svLen)); st != abi.StatusOK {
		t.Fatal(st)
	}
	if st := statusOf(hostcall(t, vm, nil, "env", "proxy_set_property", key, keyLen, rv, rvLen)); st != abi.StatusOK {
		t.Fatal(st)
	}
	for _, c := range []struct {
		name   string
		stream *Stream
		want   string
	}{{"own stream", s, "stream value"}, {"other stream", other, "root value"}, {"root", nil, "root value"}} {
		if st, v := get(c.stream); st != abi.StatusOK || v != c.want {
			t.Errorf("%s: %v %q, want %q", c.name, st, v, c.want)
		}
	}
	if st := statusOf(hostcall(t, vm, s, "env", "proxy_set_property", outside, 4, sv, svLen)); st != abi.StatusInvalidMemoryAccess {
		t.Errorf("path outside memory: %v", st)
	}
}

// What Envoy's stream info gives about the upstream: response.flags always (0 until a
// flag is set), response.code_details, upstream.address and upstream.port once the
// embedder recorded them (SetUpstream), absent before.
func TestUpstreamProperties(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{VMID: "vm-u"})
	read := func(u *Upstream, name string) string {
		t.Helper()
		s, err := vm.NewStream(StreamAttributes{SourceAddress: "10.0.0.7:41000"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if u != nil {
			s.SetUpstream(*u)
		}
		before := len(logLines(h, "prop "+name+"="))
		if _, err := s.RequestHeaders(Headers{{":method", "GET"}, {":path", "/prop?name=" + name}, {":authority", "a"}, {":scheme", "http"}}, true); err != nil {
			t.Fatal(err)
		}
		got := logLines(h, "prop "+name+"=")
		if len(got) != before+1 {
			t.Fatalf("%s: log %q", name, got)
		}
		return got[before]
	}
	le := func(n uint64) string { return string(u64le(n)) }
	failed := &Upstream{Flags: 0x20, CodeDetails: "upstream_reset_before_response_started{remote_connection_failure}", Address: "127.0.0.1:9101"}
	for _, c := range []struct {
		u          *Upstream
		name, want string
	}{
		{nil, "response.flags", "prop response.flags=" + le(0) + " status=0"},
		{nil, "response.code_details", "prop response.code_details= status=1"},
		{nil, "upstream.address", "prop upstream.address= status=1"},
		{nil, "upstream.port", "prop upstream.port= status=1"},
		{failed, "response.flags", "prop response.flags=" + le(0x20) + " status=0"},
		{failed, "response.code_details", "prop response.code_details=upstream_reset_before_response_started{remote_connection_failure} status=0"},
		{failed, "upstream.address", "prop upstream.address=127.0.0.1:9101 status=0"},
		{failed, "upstream.port", "prop upstream.port=" + le(9101) + " status=0"},
		{&Upstream{Flags: 0x4000000, CodeDetails: "dns_resolution_failure"}, "upstream.address", "prop upstream.address= status=1"},
	} {
		if got := read(c.u, c.name); got != c.want {
			t.Errorf("%+v %s: got %q, want %q", c.u, c.name, got, c.want)
		}
	}
}
