package wasmhost

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// An SDK-built guest loads under both profiles and completes a stream-originated http
// call: the answer reaches the root context, the SDK switches the effective context to
// the stream, edits its headers and resumes it.
func TestSDKGuestHTTPCallResumesStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("42"))
	}))
	t.Cleanup(srv.Close)
	for _, profile := range []Profile{Current, Legacy} {
		t.Run(profile.String(), func(t *testing.T) {
			h := newHost(t, Options{Profile: profile, Clusters: map[string]string{"up": srv.URL}})
			m, err := h.Load(context.Background(), guestBytes(t, "sdkguest"))
			if err != nil {
				t.Fatal(err)
			}
			if m.ABIVersion() != abi020 {
				t.Errorf("ABI = %s, the SDK exports %s", m.ABIVersion(), abi020)
			}
			vm, err := m.NewVM(context.Background(), PluginConfig{Name: "sdk", RootID: "r", VMID: "sdk"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { vm.Close() })
			s, a := mustRequest(t, vm, "/")
			if a != Stop {
				t.Fatalf("action = %v, want Stop (ActionPause)", a)
			}
			waitLog(t, h, "sdk: answered")
			// RequestHeaderMap takes the VM's lock: the callback has returned after it.
			if v, _ := s.RequestHeaderMap().Get("x-answer"); v != "42" {
				t.Errorf("x-answer = %q, want 42; logs:\n%s", v, dumpLogs(h))
			}
			if req, _ := s.Resumed(); req != 1 {
				t.Errorf("request resumed %d times, want 1", req)
			}
			if n := h.PollOneoffCalls(); n != 0 {
				t.Errorf("poll_oneoff called %d times by a guest that arms no timer", n)
			}
		})
	}
}
