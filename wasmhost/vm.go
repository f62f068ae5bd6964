package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"switchyard/internal/abi"
)

// ErrVMDead is returned (wrapped, with the cause) by every call on a VM that trapped,
// panicked or was closed. Test with errors.Is.
var ErrVMDead = errors.New("host: wasm VM is dead")

// PluginConfig is what Envoy's PluginConfig and VmConfig give one plugin.
type PluginConfig struct {
	Name          string            // plugin_name property
	RootID        string            // plugin_root_id property
	VMID          string            // plugin_vm_id; shared data is keyed by this string
	VMConfig      []byte            // buffer type 6 (read in on_vm_start)
	Configuration []byte            // buffer type 7 (readable only during on_configure)
	Env           map[string]string // WASI environ (Envoy's vm_config.environment_variables)
}

// The module exports the host calls, cached per VM as api.Function.
type export int

const (
	exInitialize export = iota
	exStart
	exMain
	exMainVoid
	exContextCreate
	exVMStart
	exConfigure
	exTick
	exRequestHeaders
	exRequestBody
	exRequestTrailers
	exResponseHeaders
	exResponseBody
	exResponseTrailers
	exHTTPCallResponse
	exQueueReady
	exLog
	exDone
	exDelete
	exportCount
)

var exportNames = [exportCount]string{
	"_initialize", "_start", "main", "__main_void",
	"proxy_on_context_create", "proxy_on_vm_start", "proxy_on_configure", "proxy_on_tick",
	"proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers",
	"proxy_on_response_headers", "proxy_on_response_body", "proxy_on_response_trailers",
	"proxy_on_http_call_response", "proxy_on_queue_ready",
	"proxy_on_log", "proxy_on_done", "proxy_on_delete",
}

// VM is one instance of a Module with one root context, as one Envoy worker (or the
// main thread, for a singleton service) holds it. Every call into it takes its mutex:
// one goroutine at a time is inside a VM (a Go guest called from two goroutines at once
// corrupts its heap: docs/proxy-wasm-host.md, Start sequence and stream order). A VM
// that traps or panics is dead for good: Err reports why, Dead is closed, and every
// later call fails with ErrVMDead.
type VM struct {
	host   *Host
	module *Module
	pc     PluginConfig
	name   string

	mu         sync.Mutex
	mod        api.Module
	mem        api.Memory
	ctx        context.Context
	fns        [exportCount]api.Function
	stack      [8]uint64
	allocFn    api.Function
	allocStack [1]uint64
	scratch    []byte
	environ    []string

	window       window
	configuring  bool
	vmConfig     []byte
	pluginConfig []byte

	rootID    uint32
	nextID    uint32
	effective uint32
	effStream *Stream
	streams   map[uint32]*Stream
	deferred  []*Stream

	statusCode abi.Status
	statusMsg  string
	httpResp   *httpResponse
	calls      map[uint32]*httpCall
	nextToken  uint32

	tickPeriod atomic.Int64
	tickStop   func() bool
	tickGen    uint64

	metricIDs  map[uint32]*metric
	nextMetric uint32
	rootProps  map[string][]byte

	stderr  []byte
	closed  bool
	dead    chan struct{}
	errMu   sync.Mutex
	err     error
	release sync.Once
}

// maxStderr bounds the guest stderr kept for the death report.
const maxStderr = 8 << 10

func (vm *VM) keepStderr(b []byte) {
	vm.stderr = append(vm.stderr, b...)
	if over := len(vm.stderr) - maxStderr; over > 0 {
		vm.stderr = append(vm.stderr[:0], vm.stderr[over:]...)
	}
}

// NewVM instantiates a fresh VM of m (distinct module name), runs _initialize inside
// the restricted window (then main(0,0) or __main_void when exported; _start for a
// command module), then on_context_create(root,0), on_vm_start and on_configure, as an
// Envoy worker does. An error names the cause (the trap text with the guest's stderr,
// "on_configure returned false", ...) and the VM is then discarded. Ticks and http
// calls the root context sets up run from then on.
func (m *Module) NewVM(ctx context.Context, pc PluginConfig) (*VM, error) {
	h := m.host
	n := h.vmSeq.Add(1)
	vm := &VM{
		host: h, module: m, pc: pc,
		name:         fmt.Sprintf("vm-%d", n),
		streams:      map[uint32]*Stream{},
		calls:        map[uint32]*httpCall{},
		metricIDs:    map[uint32]*metric{},
		dead:         make(chan struct{}),
		vmConfig:     append([]byte(nil), pc.VMConfig...),
		pluginConfig: append([]byte(nil), pc.Configuration...),
		nextID:       1,
	}
	for k, v := range pc.Env {
		vm.environ = append(vm.environ, k+"="+v)
	}
	sort.Strings(vm.environ)
	vm.ctx = context.WithValue(h.ctx, vmKey{}, vm)

	mod, err := h.runtime.InstantiateModule(ctx, m.compiled,
		wazero.NewModuleConfig().WithName(vm.name).WithStartFunctions())
	if err != nil {
		return nil, fmt.Errorf("host: instantiating the module for %s: %w", pc.describe(), err)
	}
	vm.mod, vm.mem = mod, mod.Memory()
	for i, name := range exportNames {
		vm.fns[i] = mod.ExportedFunction(name)
	}
	vm.allocFn = mod.ExportedFunction(m.allocator)
	h.addVM(vm)

	vm.mu.Lock()
	defer vm.mu.Unlock()
	if err := vm.start(); err != nil {
		vm.teardown()
		return nil, fmt.Errorf("host: starting %s: %w", pc.describe(), err)
	}
	return vm, nil
}

func (pc PluginConfig) describe() string {
	return fmt.Sprintf("plugin %q (root_id %q, vm_id %q)", pc.Name, pc.RootID, pc.VMID)
}

// start runs the start sequence of an Envoy worker VM. Called with vm.mu held.
func (vm *VM) start() error {
	vm.window = windowInit
	var err error
	switch {
	case vm.fns[exInitialize] != nil:
		if _, _, err = vm.call(exInitialize, nil, 0); err == nil {
			if vm.fns[exMain] != nil {
				_, _, err = vm.call(exMain, nil, 0, 0, 0)
			} else if vm.fns[exMainVoid] != nil {
				_, _, err = vm.call(exMainVoid, nil, 0)
			}
		}
	case vm.fns[exStart] != nil:
		_, _, err = vm.call(exStart, nil, 0)
	}
	vm.window = windowNormal
	if err != nil {
		return err
	}
	vm.rootID = vm.nextID
	vm.nextID++
	if _, _, err := vm.call(exContextCreate, nil, vm.rootID, uint64(vm.rootID), 0); err != nil {
		return err
	}
	vm.finishCallback()
	ok, present, err := vm.call(exVMStart, nil, vm.rootID, uint64(vm.rootID), uint64(len(vm.vmConfig)))
	vm.finishCallback()
	if err != nil {
		return err
	}
	if present && uint32(ok) == 0 {
		return errors.New("proxy_on_vm_start returned false (Envoy fails the VM)")
	}
	vm.configuring = true
	ok, present, err = vm.call(exConfigure, nil, vm.rootID, uint64(vm.rootID), uint64(len(vm.pluginConfig)))
	vm.configuring = false
	vm.finishCallback()
	if err != nil {
		return err
	}
	if present && uint32(ok) == 0 {
		return errors.New("proxy_on_configure returned false (Envoy rejects the configuration)")
	}
	return nil
}

// call runs export ex for context ctxID (stream s, or nil for the root or VM context)
// with args on the VM's cached stack. It reports whether the export exists; a missing
// callback behaves as if it returned Continue/true. The effective context is ctxID for
// the call and restored after it, as cpp-host does. Any error kills the VM.
// Called with vm.mu held.
func (vm *VM) call(ex export, s *Stream, ctxID uint32, args ...uint64) (uint64, bool, error) {
	if err := vm.aliveErr(); err != nil {
		return 0, false, err
	}
	f := vm.fns[ex]
	if f == nil {
		return 0, false, nil
	}
	prevID, prevStream := vm.effective, vm.effStream
	vm.effective, vm.effStream = ctxID, s
	st := vm.stack[:max(len(args), 1)]
	copy(st, args)
	err := f.CallWithStack(vm.ctx, st)
	vm.effective, vm.effStream = prevID, prevStream
	if err != nil {
		vm.die(fmt.Errorf("%s(context %d) trapped: %w", exportNames[ex], ctxID, err))
		return 0, true, vm.aliveErr()
	}
	return st[0], true, nil
}

// finishCallback applies the actions Envoy defers to the end of a VM call.
func (vm *VM) finishCallback() {
	for _, s := range vm.deferred {
		s.applyDeferred()
	}
	vm.deferred = vm.deferred[:0]
}

// aliveErr is nil while the VM can be called, else an error wrapping ErrVMDead.
func (vm *VM) aliveErr() error {
	if !vm.closed {
		return nil // die always tears down (closed), so a VM not closed is alive; no lock per call
	}
	if err := vm.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrVMDead, err)
	}
	if vm.closed {
		return fmt.Errorf("%w: closed", ErrVMDead)
	}
	return nil
}

// die marks the VM dead after a failed call: it is never called again. The cause and
// the guest's recent stderr (a Go panic's text) are logged at Critical and kept in Err.
// Called with vm.mu held.
func (vm *VM) die(cause error) {
	stderr := strings.TrimSpace(string(vm.stderr))
	if stderr != "" {
		cause = fmt.Errorf("%w\nguest stderr:\n%s", cause, stderr)
	}
	vm.errMu.Lock()
	first := vm.err == nil
	if first {
		vm.err = cause
	}
	vm.errMu.Unlock()
	if !first {
		return
	}
	vm.host.log(vm, Critical, "wasm VM died: "+cause.Error())
	vm.teardown()
	close(vm.dead)
}

// teardown stops the VM's timers and http calls and frees its instance. Called with
// vm.mu held, once the VM is dead or closed.
func (vm *VM) teardown() {
	vm.release.Do(func() {
		vm.closed = true
		if vm.tickStop != nil {
			vm.tickStop()
			vm.tickStop = nil
		}
		vm.tickGen++
		vm.tickPeriod.Store(0)
		for tok, c := range vm.calls {
			c.abandon()
			delete(vm.calls, tok)
		}
		_ = vm.mod.Close(context.Background())
		vm.host.removeVM(vm)
	})
}

// Close ends the VM as Envoy ends a root context: proxy_on_done(root) then
// proxy_on_delete(root); then its ticks stop, its http calls are cancelled and the
// instance is freed. Closing a dead VM only frees it. Close is idempotent.
func (vm *VM) Close() error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if vm.closed {
		return nil
	}
	var err error
	if vm.Err() == nil {
		if _, _, err = vm.call(exDone, nil, vm.rootID, uint64(vm.rootID)); err == nil {
			vm.finishCallback()
			_, _, err = vm.call(exDelete, nil, vm.rootID, uint64(vm.rootID))
			vm.finishCallback()
		}
	}
	vm.teardown()
	return err
}

// Kill ends the VM at once without proxy_on_done or proxy_on_delete, as a worker that
// crashed or a process that was killed: its ticks stop, its http calls are cancelled
// and the instance is freed. The guest learns nothing (Close is the orderly end).
func (vm *VM) Kill() {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	vm.teardown()
}

// Err returns nil while the VM is alive, and the trap or panic (with the guest's
// stderr) once it died.
func (vm *VM) Err() error {
	vm.errMu.Lock()
	defer vm.errMu.Unlock()
	return vm.err
}

// Dead returns a channel closed when the VM dies (not when it is closed): the dev
// proxy replaces a dead VM with a new one.
func (vm *VM) Dead() <-chan struct{} { return vm.dead }

// RootContextID returns the id of the VM's root context (1: the first id of the VM).
func (vm *VM) RootContextID() uint32 { return vm.rootID }

// Name returns the VM's module instance name, unique within its Host.
func (vm *VM) Name() string { return vm.name }

// Config returns the PluginConfig the VM was started with.
func (vm *VM) Config() PluginConfig { return vm.pc }

// MemoryBytes returns the current size of the VM's linear memory, which never shrinks.
func (vm *VM) MemoryBytes() uint64 {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if vm.closed {
		return 0
	}
	return uint64(vm.mem.Size())
}

// NewStream creates a stream context: proxy_on_context_create(stream, root). Ids come
// from the VM's counter and are never reused.
func (vm *VM) NewStream(attrs StreamAttributes) (*Stream, error) {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if err := vm.aliveErr(); err != nil {
		return nil, err
	}
	s := &Stream{vm: vm, id: vm.nextID, attrs: attrs}
	vm.nextID++
	vm.streams[s.id] = s
	if _, _, err := vm.call(exContextCreate, s, s.id, uint64(s.id), uint64(vm.rootID)); err != nil {
		delete(vm.streams, s.id)
		return nil, err
	}
	vm.finishCallback()
	return s, nil
}
