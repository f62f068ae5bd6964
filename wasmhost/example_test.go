package wasmhost_test

import (
	"context"
	"fmt"
	"log"

	"switchyard/internal/contract"
	"switchyard/internal/testkit/bin"
	"switchyard/wasmhost"
)

// The project's filter.wasm as its router root on one worker VM, with no route table
// yet: a request naming a server is answered by the filter itself, and one without the
// header too. A dev proxy does the same per request and forwards on Continue.
func Example() {
	wasm, err := bin.Bytes("filter.wasm") // built once per test process
	if err != nil {
		log.Fatal(err)
	}
	h := wasmhost.New(wasmhost.Options{
		// Where proxy_http_call's "registrar" cluster goes; nothing listens here.
		Clusters: map[string]string{"registrar": "http://127.0.0.1:1"},
	})
	defer h.Close()
	ctx := context.Background()
	m, err := h.Load(ctx, wasm) // refused here when Envoy would refuse it
	if err != nil {
		log.Fatal(err)
	}
	vm, err := m.NewVM(ctx, wasmhost.PluginConfig{
		Name: "switchyard", RootID: contract.RootRouter, VMID: "switchyard",
		Configuration: []byte(`{"default_port": 8080}`),
	})
	if err != nil {
		log.Fatal(err) // the trap text, "proxy_on_configure returned false", ...
	}
	defer vm.Close()

	for _, name := range []string{"web-1", ""} {
		s, err := vm.NewStream(wasmhost.StreamAttributes{SourceAddress: "127.0.0.1:5000"})
		if err != nil {
			log.Fatal(err)
		}
		hdrs := wasmhost.Headers{{":method", "GET"}, {":path", "/sys/logs"}, {":authority", "proxy"}}
		if name != "" {
			hdrs = append(hdrs, [2]string{"x-server-name", name})
		}
		action, err := s.RequestHeaders(hdrs, true)
		switch lr := s.LocalResponse(); {
		case err != nil: // the VM died: fail closed
			fmt.Println("VM dead:", err)
		case lr != nil: // answer the client with it
			fmt.Println(action, lr.Status, lr.Details)
		case action == wasmhost.Continue: // forward with s.RequestHeaderMap()
			authority, _ := s.RequestHeaderMap().Get(":authority")
			fmt.Println("forward to", authority)
		}
		s.Close() // on_log, on_done, on_delete
	}
	// Output:
	// Stop 503 routes_not_loaded
	// Stop 400 missing_server_name
}
