package wasmhost

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"switchyard/internal/abi"
	"switchyard/internal/contract"
	"switchyard/internal/testkit/bin"
)

// guestBytes is the test guest testdata/<name> (a tiny main package), built once per
// test process by bin.Guest.
func guestBytes(t testing.TB, name string) []byte {
	t.Helper()
	return bin.Guest(t, "testdata/"+name)
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

// hostcall calls the import module.name ("env" or "wasi_snapshot_preview1") through
// the same wrapper wazero runs (window check, call count), with vm's context, as the
// guest would from a callback of s (nil: of the root context), on vm's memory, and
// returns its result (0 for an import without one). It is how a group's tests reach
// every status of a call without a guest route per case. (wazero forbids calling a
// host module's exports from Go, so the wrapper is called directly.) Deferred actions
// (local replies, continues) are applied after it, as at the end of a callback.
func hostcall(t testing.TB, vm *VM, s *Stream, module, name string, args ...uint64) uint32 {
	t.Helper()
	res, err := hostcallIn(vm, s, windowNormal, module, name, args...)
	if err != nil {
		t.Fatalf("%s.%s: %v", module, name, err)
	}
	return res
}

// hostcallIn is hostcall inside a window; a trap comes back as the error.
func hostcallIn(vm *VM, s *Stream, w window, module, name string, args ...uint64) (res uint32, err error) {
	if module != moduleEnv {
		module = moduleWASI
	}
	idx := -1
	for i, f := range importTable {
		if f.module == module && f.name == name {
			idx = i
		}
	}
	if idx < 0 {
		return 0, fmt.Errorf("the host has no import %s.%s", module, name)
	}
	f := importTable[idx]
	if len(args) != len(f.params) {
		return 0, fmt.Errorf("%s takes %d arguments, got %d", name, len(f.params), len(args))
	}
	stack := make([]uint64, max(len(f.params), len(f.results)))
	copy(stack, args)
	vm.mu.Lock()
	defer vm.mu.Unlock()
	prevID, prevStream, prevWindow := vm.effective, vm.effStream, vm.window
	vm.effective, vm.effStream, vm.window = vm.rootID, nil, w
	if s != nil {
		vm.effective, vm.effStream = s.id, s
	}
	defer func() {
		vm.effective, vm.effStream, vm.window = prevID, prevStream, prevWindow
		vm.finishCallback()
		if p := recover(); p != nil {
			err = fmt.Errorf("trap: %v", p)
		}
	}()
	vm.host.goFunc(idx, f)(vm.ctx, nil, stack)
	if len(f.results) == 0 {
		return 0, nil
	}
	return uint32(stack[0]), nil
}

// guestBuf allocates n bytes with the guest's own allocator (the probe keeps what it
// allocated rooted) and returns their address.
func guestBuf(t testing.TB, vm *VM, n uint32) uint64 {
	t.Helper()
	vm.mu.Lock()
	defer vm.mu.Unlock()
	ptr, ok := vm.alloc(n)
	if !ok {
		t.Fatalf("the guest's allocator returned 0 for %d bytes", n)
	}
	return uint64(ptr)
}

// guestData copies b into guest memory and returns its (address, length) arguments.
func guestData(t testing.TB, vm *VM, b string) (uint64, uint64) {
	t.Helper()
	ptr := guestBuf(t, vm, uint32(max(len(b), 1)))
	if !vm.mem.Write(uint32(ptr), []byte(b)) {
		t.Fatal("writing guest memory")
	}
	return ptr, uint64(len(b))
}

// readU32 and readU64 read an out-parameter; readOut reads the (ptr, size) pair an
// import copied a value out to.
func readU32(t testing.TB, vm *VM, ptr uint64) uint32 {
	t.Helper()
	v, ok := vm.mem.ReadUint32Le(uint32(ptr))
	if !ok {
		t.Fatalf("reading guest memory at %d", ptr)
	}
	return v
}

func readU64(t testing.TB, vm *VM, ptr uint64) uint64 {
	t.Helper()
	v, ok := vm.mem.ReadUint64Le(uint32(ptr))
	if !ok {
		t.Fatalf("reading guest memory at %d", ptr)
	}
	return v
}

func readOut(t testing.TB, vm *VM, ptrPtr, sizePtr uint64) string {
	t.Helper()
	p, n := readU32(t, vm, ptrPtr), readU32(t, vm, sizePtr)
	b, ok := vm.mem.Read(p, n)
	if !ok {
		t.Fatalf("reading %d bytes of guest memory at %d", n, p)
	}
	return string(b)
}

// outParams allocates two u32 out-parameters (a value's pointer and size).
func outParams(t testing.TB, vm *VM) (uint64, uint64) {
	t.Helper()
	p := guestBuf(t, vm, 8)
	return p, p + 4
}

// outside is an address past the end of guest memory.
const outside = 0xFFFF_FFF0

// statusOf turns a hostcall result into a Status for messages.
func statusOf(r uint32) abi.Status { return abi.Status(r) }

// streamWith starts a stream on vm whose request headers are h (on_request_headers ran),
// closed when the test ends.
func streamWith(t testing.TB, vm *VM, h Headers) *Stream {
	t.Helper()
	s, err := vm.NewStream(StreamAttributes{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.RequestHeaders(h, false); err != nil {
		t.Fatal(err)
	}
	return s
}

// clockProbe starts the probe on a host driven by a ManualClock reading start, with an
// 8-byte buffer in guest memory for a clock's answer.
func clockProbe(t testing.TB, start time.Time) (*ManualClock, *VM, uint64) {
	t.Helper()
	clock := NewManualClock(start)
	vm := startProbe(t, newHost(t, Options{Clock: clock}), PluginConfig{})
	return clock, vm, guestBuf(t, vm, 8)
}
