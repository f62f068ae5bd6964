package wasmhost

import (
	"testing"

	"switchyard/internal/abi"
)

// Every status the buffer imports return, and Envoy's set_buffer_bytes rule.
func TestBufferStatuses(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{VMConfig: []byte("vmc")})
	s := streamWith(t, vm, Headers{{":path", "/x"}})
	if _, err := s.RequestBody([]byte("hello world"), true); err != nil {
		t.Fatal(err)
	}
	outP, outS := outParams(t, vm)
	const (
		reqBody = uint64(abi.BufferHttpRequestBody)
		vmCfg   = uint64(abi.BufferVmConfiguration)
		plugin  = uint64(abi.BufferPluginConfiguration)
		callRsp = uint64(abi.BufferHttpCallResponseBody)
		downstr = uint64(abi.BufferDownstreamData)
	)
	get := func(bt, start, max uint64) (abi.Status, string) {
		st := statusOf(hostcall(t, vm, s, "env", "proxy_get_buffer_bytes", bt, start, max, outP, outS))
		if st != abi.StatusOK {
			return st, ""
		}
		return st, readOut(t, vm, outP, outS)
	}
	reads := []struct {
		name           string
		bt, start, max uint64
		want           abi.Status
		data           string
	}{
		{"a slice", reqBody, 6, 100, abi.StatusOK, "world"},
		{"start past the end", reqBody, 50, 10, abi.StatusOK, ""},
		{"vm configuration", vmCfg, 0, 10, abi.StatusOK, "vmc"},
		{"plugin configuration outside on_configure", plugin, 0, 10, abi.StatusNotFound, ""},
		{"http-call answer outside its callback", callRsp, 0, 10, abi.StatusNotFound, ""},
		{"a type Envoy has but an HTTP filter never", downstr, 0, 10, abi.StatusNotFound, ""},
		{"unknown type", 9, 0, 10, abi.StatusBadArgument, ""},
	}
	for _, tc := range reads {
		t.Run("get "+tc.name, func(t *testing.T) {
			if st, data := get(tc.bt, tc.start, tc.max); st != tc.want || data != tc.data {
				t.Fatalf("get = %v %q, want %v %q", st, data, tc.want, tc.data)
			}
		})
	}
	if st := statusOf(hostcall(t, vm, s, "env", "proxy_get_buffer_status", reqBody, outP, outS)); st != abi.StatusOK || readU32(t, vm, outP) != 11 || readU32(t, vm, outS) != 0 {
		t.Errorf("buffer status = %v, length %d, flags %d; want Ok, 11, 0", st, readU32(t, vm, outP), readU32(t, vm, outS))
	}

	a, aLen := guestData(t, vm, ">>")
	writes := []struct {
		name        string
		bt          uint64
		start, size uint64
		want        abi.Status
		body        string
	}{
		{"prepend", reqBody, 0, 0, abi.StatusOK, ">>hello world"},
		{"drain 7 then prepend", reqBody, 0, 7, abi.StatusOK, ">> world"},
		{"append at the end", reqBody, 8, 0, abi.StatusOK, ">> world>>"},
		{"start inside", reqBody, 3, 0, abi.StatusBadArgument, ">> world>>"},
		{"replace", reqBody, 0, 100, abi.StatusOK, ">>"},
		{"immutable vm configuration", vmCfg, 0, 0, abi.StatusBadArgument, ">>"},
		{"unknown type", 9, 0, 0, abi.StatusBadArgument, ">>"},
	}
	for _, tc := range writes {
		t.Run("set "+tc.name, func(t *testing.T) {
			st := statusOf(hostcall(t, vm, s, "env", "proxy_set_buffer_bytes", tc.bt, tc.start, tc.size, a, aLen))
			if st != tc.want || string(s.RequestBodyBytes()) != tc.body {
				t.Fatalf("set = %v, body %q; want %v, %q", st, s.RequestBodyBytes(), tc.want, tc.body)
			}
		})
	}
}
