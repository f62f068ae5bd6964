package wasmhost

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"switchyard/internal/contract"
	"switchyard/internal/testbin"
)

// guestBytes is the test guest testdata/<name> (a tiny main package), built once per
// test process by testbin.Guest.
func guestBytes(t testing.TB, name string) []byte {
	t.Helper()
	return testbin.Guest(t, "testdata/"+name)
}

// newHost returns a Host closed when the test ends.
func newHost(t testing.TB, opts Options) *Host {
	t.Helper()
	h := New(opts)
	t.Cleanup(func() { h.Close() })
	return h
}

func loadProbe(t testing.TB, h *Host) *Module {
	t.Helper()
	m, err := h.Load(context.Background(), guestBytes(t, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// startProbe starts a probe VM with root id "router", vm_id "v1" unless pc says
// otherwise, closed when the test ends.
func startProbe(t testing.TB, h *Host, pc PluginConfig) *VM {
	t.Helper()
	if pc.Name == "" {
		pc.Name = "probe"
	}
	if pc.RootID == "" {
		pc.RootID = contract.RootRouter
	}
	if pc.VMID == "" {
		pc.VMID = "v1"
	}
	vm, err := loadProbe(t, h).NewVM(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vm.Close() })
	return vm
}

// request runs a whole request's headers through vm: a new stream, then
// on_request_headers with an end of stream. The stream is closed when the test ends.
func request(t testing.TB, vm *VM, path string) (*Stream, Action, error) {
	t.Helper()
	s, err := vm.NewStream(StreamAttributes{SourceAddress: "10.0.0.7:41000", RequestID: "req-1"})
	if err != nil {
		return nil, Stop, err
	}
	t.Cleanup(func() { s.Close() })
	a, err := s.RequestHeaders(Headers{
		{":method", "GET"}, {":path", path}, {":authority", "Example.test"}, {":scheme", "http"},
		{"X-Server-Name", "web-1"},
	}, true)
	return s, a, err
}

// mustRequest is request for requests that must not fail.
func mustRequest(t testing.TB, vm *VM, path string) (*Stream, Action) {
	t.Helper()
	s, a, err := request(t, vm, path)
	if err != nil {
		t.Fatalf("request %s: %v", path, err)
	}
	return s, a
}

// waitLog waits (at most 10 s) for a log line containing substr.
func waitLog(t testing.TB, h *Host, substr string) LogEntry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := h.WaitLog(ctx, substr)
	if err != nil {
		t.Fatalf("%v; logs:\n%s", err, dumpLogs(h))
	}
	return e
}

// logLines returns the messages containing substr, in order.
func logLines(h *Host, substr string) []string {
	var out []string
	for _, e := range h.Logs() {
		if strings.Contains(e.Message, substr) {
			out = append(out, e.Message)
		}
	}
	return out
}

func dumpLogs(h *Host) string {
	var b strings.Builder
	for _, e := range h.Logs() {
		fmt.Fprintf(&b, "  %s %s\n", e.Level, e.Message)
	}
	return b.String()
}
