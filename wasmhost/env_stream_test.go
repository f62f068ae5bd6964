package wasmhost

import (
	"strings"
	"testing"

	"switchyard/internal/abi"
)

// A local response is applied when the callback returns (so the guest's later edits
// in the same callback still land) and always stops the stream.
func TestLocalResponseIsDeferredAndStops(t *testing.T) {
	w := &deferralWriter{}
	h := newHost(t, Options{LogOutput: w})
	vm := startProbe(t, h, PluginConfig{})
	s, err := vm.NewStream(StreamAttributes{})
	if err != nil {
		t.Fatal(err)
	}
	w.stream = s
	a, err := s.RequestHeaders(Headers{{":method", "GET"}, {":path", "/local"}, {":authority", "x"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if a != Stop {
		t.Errorf("action = %v; a local response must stop the stream though the guest returned Continue", a)
	}
	if !w.sawLine {
		t.Fatal("the guest's log line after send_local_response never reached LogOutput")
	}
	if w.visibleEarly {
		t.Error("LocalResponse was visible while the callback was still running; Envoy defers it")
	}
	lr := s.LocalResponse()
	if lr == nil {
		t.Fatal("no local response")
	}
	if lr.Status != 403 || lr.Details != "denied_by_probe" || string(lr.Body) != "no" || lr.GRPCStatus != -1 {
		t.Errorf("local response = %+v", lr)
	}
	if v, _ := lr.Headers.Get("x-probe"); v != "1" || lr.Headers[0][0] != "x-probe" {
		t.Errorf("local response headers = %v, want lower-cased x-probe: 1", lr.Headers)
	}
	if v, _ := s.RequestHeaderMap().Get("x-after-local"); v != "yes" {
		t.Error("an edit made after send_local_response in the same callback was lost")
	}
	s.Close()
}

// deferralWriter checks, while the guest is inside its callback, that the stream's
// local response is not visible yet.
type deferralWriter struct {
	stream       *Stream
	sawLine      bool
	visibleEarly bool
}

func (w *deferralWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "after local") && w.stream != nil {
		w.sawLine = true
		w.visibleEarly = w.stream.LocalResponse() != nil
	}
	return len(p), nil
}

// proxy_continue_stream and proxy_close_stream: Envoy's statuses per stream type, and
// the continue is counted when the callback returns.
func TestContinueAndCloseStream(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{})
	s := streamWith(t, vm, Headers{{":path", "/x"}})
	cases := []struct {
		name   string
		stream *Stream
		typ    uint64
		want   abi.Status
	}{
		{"request", s, 0, abi.StatusOK},
		{"response", s, 1, abi.StatusOK},
		{"downstream", s, 2, abi.StatusBadArgument},
		{"upstream", s, 3, abi.StatusUnimplemented},
		{"unknown", s, 4, abi.StatusBadArgument},
		{"from the root context", nil, 0, abi.StatusBadArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusOf(hostcall(t, vm, tc.stream, "env", "proxy_continue_stream", tc.typ)); got != tc.want {
				t.Fatalf("continue = %v, want %v", got, tc.want)
			}
		})
	}
	if req, resp := s.Resumed(); req != 1 || resp != 1 {
		t.Errorf("Resumed = %d, %d; want 1, 1", req, resp)
	}
	if s.LocalResponse() != nil {
		t.Fatal("a local response before close_stream")
	}
	if st := statusOf(hostcall(t, vm, s, "env", "proxy_close_stream", 0)); st != abi.StatusOK {
		t.Fatal(st)
	}
	if lr := s.LocalResponse(); lr == nil || lr.Details != "wasm_close_stream" || lr.Status != 0 {
		t.Errorf("after close_stream: %+v, want a reset reported as details wasm_close_stream", lr)
	}
}

// proxy_send_local_response refuses malformed headers, and does nothing outside a
// stream.
func TestSendLocalResponseStatuses(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{})
	s := streamWith(t, vm, Headers{{":path", "/x"}})
	bad, badLen := guestData(t, vm, "\x05\x00\x00\x00")
	good, goodLen := guestData(t, vm, abi.EncodePairs([][2]string{{"X-A", "1"}}))
	body, bodyLen := guestData(t, vm, "nope")
	send := func(s *Stream, hp, hl uint64) abi.Status {
		return statusOf(hostcall(t, vm, s, "env", "proxy_send_local_response", 418, body, bodyLen, body, bodyLen, hp, hl, 99))
	}
	if st := send(s, bad, badLen); st != abi.StatusBadArgument || s.LocalResponse() != nil {
		t.Errorf("malformed headers: %v, local %v; want BadArgument and no reply", st, s.LocalResponse())
	}
	if st := send(nil, good, goodLen); st != abi.StatusOK {
		t.Errorf("from the root context: %v, want Ok (nothing happens)", st)
	}
	if st := send(s, good, goodLen); st != abi.StatusOK {
		t.Fatal(st)
	}
	lr := s.LocalResponse()
	if lr == nil || lr.Status != 418 || string(lr.Body) != "nope" || lr.GRPCStatus != -1 || lr.Headers[0][0] != "x-a" {
		t.Errorf("local response %+v", lr)
	}
}
