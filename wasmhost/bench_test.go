package wasmhost

import "testing"

// BenchmarkStreamLifecycle measures one routed request through the probe on the
// compiler engine: stream create, request headers (one header read with a re-entrant
// allocation, one replace), log, done, delete. It bounds the host's share of the
// per-request cost the filter benchmarks report.
func BenchmarkStreamLifecycle(b *testing.B) {
	h := newHost(b, Options{})
	vm := startProbe(b, h, PluginConfig{})
	hdrs := Headers{{":method", "GET"}, {":path", "/route"}, {":authority", "example.test"}, {"x-server-name", "web-1"}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := vm.NewStream(StreamAttributes{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.RequestHeaders(hdrs, true); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
