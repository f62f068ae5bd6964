package wasmhost

import (
	"testing"

	"switchyard/internal/abi"
)

// The statuses of the context and miscellaneous imports. (That a switched effective
// context reaches the stream is TestSDKGuestHTTPCallResumesStream, with a real SDK
// guest.)
func TestContextImportStatuses(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{})
	s := streamWith(t, vm, Headers{{":path", "/x"}})
	crc, crcLen := guestData(t, vm, "clear_route_cache")
	nope, nopeLen := guestData(t, vm, "verify_signature")
	outP, outS := outParams(t, vm)
	cases := []struct {
		name string
		fn   string
		args []uint64
		want abi.Status
	}{
		{"effective: the root", "proxy_set_effective_context", []uint64{uint64(vm.RootContextID())}, abi.StatusOK},
		{"effective: a live stream", "proxy_set_effective_context", []uint64{uint64(s.ID())}, abi.StatusOK},
		{"effective: unknown id", "proxy_set_effective_context", []uint64{77}, abi.StatusBadArgument},
		{"done", "proxy_done", nil, abi.StatusNotFound},
		{"foreign clear_route_cache", "proxy_call_foreign_function", []uint64{crc, crcLen, 0, 0, outP, outS}, abi.StatusOK},
		{"foreign, not provided", "proxy_call_foreign_function", []uint64{nope, nopeLen, 0, 0, outP, outS}, abi.StatusNotFound},
		{"envoy_resolve_dns", "envoy_resolve_dns", []uint64{crc, crcLen, outP}, abi.StatusUnimplemented},
		{"status outside an http-call answer", "proxy_get_status", []uint64{outP, outP + 4, outS}, abi.StatusOK},
		{"grpc call", "proxy_grpc_call", make([]uint64, 12), abi.StatusParseFailure},
		{"grpc stream", "proxy_grpc_stream", make([]uint64, 9), abi.StatusParseFailure},
		{"grpc send", "proxy_grpc_send", make([]uint64, 4), abi.StatusNotFound},
		{"grpc cancel", "proxy_grpc_cancel", make([]uint64, 1), abi.StatusNotFound},
		{"grpc close", "proxy_grpc_close", make([]uint64, 1), abi.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusOf(hostcall(t, vm, nil, "env", tc.fn, tc.args...)); got != tc.want {
				t.Fatalf("%s = %v, want %v", tc.fn, got, tc.want)
			}
		})
	}
	if hostcall(t, vm, nil, "env", "pthread_equal", 5, 5) != 1 || hostcall(t, vm, nil, "env", "pthread_equal", 5, 6) != 0 {
		t.Error("pthread_equal")
	}
}
