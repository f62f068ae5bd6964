package wasmhost

import (
	"context"
	"fmt"
	"strings"
	"switchyard/internal/abi"

	"github.com/tetratelabs/wazero/api"
)

// The host's import table: every function a module may import, with where Envoy links
// it and which restricted windows allow it. Each group has its own file, each function
// its own doc block naming what it returns and which Envoy behaviour it follows:
//
//	env_log.go          proxy_log, proxy_get_log_level
//	env_headers.go      proxy_{get,add,replace,remove}_header_map_value, _pairs, _size
//	env_buffers.go      proxy_get_buffer_status, proxy_{get,set}_buffer_bytes
//	env_stream.go       proxy_send_local_response, proxy_continue_stream, proxy_close_stream
//	env_properties.go   proxy_get_property, proxy_set_property
//	env_shared_data.go  proxy_{get,set}_shared_data, the shared queues
//	env_http_call.go    proxy_http_call, proxy_grpc_*
//	env_metrics.go      proxy_define_metric, proxy_{increment,record,get}_metric
//	env_timer.go        proxy_set_tick_period_milliseconds, proxy_get_current_time_nanoseconds
//	env_context.go      proxy_set_effective_context, proxy_get_status, proxy_done, foreign
//	                    functions and Envoy's extra env imports
//	wasi_*.go           wasi_snapshot_preview1 (also linked as wasi_unstable)
//
// The facts are in docs/proxy-wasm-host.md. Every i32 argument is read as
// uint32(stack[i]): wazero may leave garbage in the upper half of a stack slot
// (docs/proxy-wasm-host.md, Limits and host mechanics).

// hostFunc is one import the host links, with its behaviour.
type hostFunc struct {
	module  string // moduleEnv or moduleWASI
	name    string
	params  []api.ValueType
	results []api.ValueType
	link    link
	allowed allowed
	fn      func(vm *VM, stack []uint64)
}

// envCall declares the common kind of env import: linked in both profiles, allowed in
// callbacks only, returning impl's status in its one i32 result.
func envCall(name string, params int, impl func(vm *VM, s []uint64) abi.Status) *hostFunc {
	return &hostFunc{
		module: moduleEnv, name: name,
		params: ps(params), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
		fn: func(vm *VM, s []uint64) { s[0] = uint64(impl(vm, s)) },
	}
}

const (
	moduleEnv  = "env"
	moduleWASI = "wasi" // linked as wasi_snapshot_preview1 and wasi_unstable
)

// link says where Envoy links an import (docs/proxy-wasm-host.md, Profiles); a module
// importing one its profile does not link is refused at load.
type link uint8

const (
	linkedEverywhere link = iota // both profiles
	linkedCurrent                // the Current profile only
	linkedABI021                 // both profiles, only for modules exporting proxy_abi_version_0_2_1
)

// allowed says which restricted windows allow an import, per profile
// (docs/proxy-wasm-host.md, Restricted windows). Every import may be called from a
// callback.
type allowed uint8

const (
	initCurrent allowed = 1 << iota
	initLegacy
	allocCurrent
	allocLegacy

	callbacksOnly      allowed = 0
	inInit                     = initCurrent | initLegacy
	inInitCurrent              = initCurrent // the Current-only WASI stubs
	inInitAndAlloc             = inInit | allocCurrent | allocLegacy
	inInitAllocCurrent         = initCurrent | allocCurrent // poll_oneoff
)

// window is the kind of guest call running. Outside windowNormal only the imports
// Envoy allows there may be called; any other traps the VM.
type window uint8

const (
	windowNormal window = iota
	windowInit          // _initialize / main / _start
	windowAlloc         // malloc / proxy_on_memory_allocate
	windowCount
)

func (w window) String() string {
	switch w {
	case windowInit:
		return "_initialize"
	case windowAlloc:
		return "the allocator (malloc / proxy_on_memory_allocate)"
	}
	return "a callback"
}

// importTable lists every import the host links, env first.
var importTable = concat(
	logImports, headerImports, bufferImports, streamImports, propertyImports,
	sharedDataImports, httpCallImports, metricImports, timerImports, contextImports,
	wasiFSImports, wasiEnvironImports, wasiClockImports, wasiPollImports,
	wasiProcImports, wasiRandomImports, wasiSockImports,
)

func concat(groups ...[]*hostFunc) []*hostFunc {
	var out []*hostFunc
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// vmKey is the context key under which each guest call carries its *VM: a host
// function finds its VM with one ctx.Value lookup, no map and no lock.
type vmKey struct{}

// trap is what a host function panics with to trap the guest; wazero turns the
// panic into the error the guest call returns, and the VM is then marked dead.
type trap struct{ msg string }

func (t *trap) Error() string { return t.msg }

// qualified is the import's name as Envoy's messages spell it.
func (f *hostFunc) qualified() string {
	if f.module == moduleEnv {
		return "env." + f.name
	}
	return "wasi_snapshot_preview1." + f.name
}

// goFunc wraps the i-th import for wazero: find the VM, count the call, enforce the
// window.
func (h *Host) goFunc(i int, f *hostFunc) api.GoModuleFunc {
	counter := &h.counts[i].n
	allowedIn := [windowCount]bool{windowNormal: true}
	if h.opts.Profile == Legacy {
		allowedIn[windowInit] = f.allowed&initLegacy != 0
		allowedIn[windowAlloc] = f.allowed&allocLegacy != 0
	} else {
		allowedIn[windowInit] = f.allowed&initCurrent != 0
		allowedIn[windowAlloc] = f.allowed&allocCurrent != 0
	}
	qualified := f.qualified()
	return func(ctx context.Context, _ api.Module, stack []uint64) {
		vm, _ := ctx.Value(vmKey{}).(*VM)
		if vm == nil {
			panic(&trap{msg: "host: " + qualified + " called outside a host-driven call"})
		}
		counter.Add(1)
		if !allowedIn[vm.window] {
			panic(&trap{msg: fmt.Sprintf("restricted_callback: %s may not be called during %s (Envoy traps here and the VM fails)", qualified, vm.window)})
		}
		f.fn(vm, stack)
	}
}

// linked reports whether the host links module.name for a module of the given ABI
// under its profile, and the function if so.
func (h *Host) linked(module, name string, abi string) (*hostFunc, bool) {
	if module == "wasi_snapshot_preview1" || module == "wasi_unstable" {
		module = moduleWASI
	}
	f, ok := h.byName[module+"."+name]
	if !ok {
		return nil, false
	}
	switch f.link {
	case linkedCurrent:
		return f, h.opts.Profile == Current
	case linkedABI021:
		return f, abi == abi021
	}
	return f, true
}

func signature(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return strings.Join(s, ",")
	}
	return "(" + names(params) + ") -> (" + names(results) + ")"
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// ps builds a parameter list of n i32s.
func ps(n int) []api.ValueType {
	s := make([]api.ValueType, n)
	for i := range s {
		s[i] = i32
	}
	return s
}

// types spells out a parameter list with i64s in it.
func types(ts ...api.ValueType) []api.ValueType { return ts }

var r32 = []api.ValueType{api.ValueTypeI32}
