package wasmhost

import (
	"context"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// WASI errnos used by the host's wasi_snapshot_preview1.
const (
	errnoSuccess  = 0
	errnoBadf     = 8
	errnoNotdir   = 20
	errnoInval    = 28
	errnoNoent    = 44
	errnoNosys    = 52
	errnoNotsup   = 58
	errnoNotcapab = 76
)

// Windows: the kind of guest call running. Outside windowNormal only the imports
// Envoy allows there may be called; any other traps the VM (CPH "restricted_callback").
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

// Flags of an import: where it is linked and which restricted windows allow it.
// Everything is linked in the current profile (cpp-host after PR #533).
const (
	linkLegacy   = 1 << iota // also linked by Envoy 1.33–1.37 (cpp-host #427, before #533)
	initCurrent              // allowed during _initialize (current)
	initLegacy               // allowed during _initialize (legacy)
	allocCurrent             // allowed inside the allocator (current)
	allocLegacy              // allowed inside the allocator (legacy)
	abi021Only               // linked only for modules exporting proxy_abi_version_0_2_1
)

// Common flag sets.
const (
	old       = linkLegacy                              // linked everywhere, never in a window
	initBoth  = linkLegacy | initCurrent | initLegacy   // linked everywhere, allowed in _initialize
	stub533   = initCurrent                             // #533 stubs: current only, allowed in _initialize
	everyWhen = initBoth | allocCurrent | allocLegacy   // proxy_log, fd_write, clock_time_get
	wasiCurr  = 0                                       // linked only in current, no window
	poll      = linkLegacy | initCurrent | allocCurrent // poll_oneoff
)

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// hostFunc is one import the host links, with its behaviour.
type hostFunc struct {
	idx     int
	module  string // "env" or "wasi" (linked as wasi_snapshot_preview1 and wasi_unstable)
	name    string
	params  []api.ValueType
	results []api.ValueType
	flags   int
	fn      func(vm *VM, stack []uint64)
}

// vmKey is the context key under which each guest call carries its *VM: a host
// function finds its VM with one ctx.Value lookup, no map and no lock.
type vmKey struct{}

// trap is what a host function panics with to trap the guest; wazero turns the
// panic into the error the guest call returns, and the VM is then marked dead.
type trap struct{ msg string }

func (t *trap) Error() string { return t.msg }

// def adds an import to the host's table.
func (h *Host) def(module, name string, params, results []api.ValueType, flags int, fn func(vm *VM, stack []uint64)) {
	h.funcs = append(h.funcs, &hostFunc{idx: len(h.funcs), module: module, name: name,
		params: params, results: results, flags: flags, fn: fn})
}

// goFunc wraps a hostFunc for wazero: find the VM, count the call, enforce the window.
func (h *Host) goFunc(f *hostFunc) api.GoModuleFunc {
	counter := &h.counts[f.idx]
	allowed := [windowCount]bool{windowNormal: true}
	if h.opts.Profile == Legacy {
		allowed[windowInit] = f.flags&initLegacy != 0
		allowed[windowAlloc] = f.flags&allocLegacy != 0
	} else {
		allowed[windowInit] = f.flags&initCurrent != 0
		allowed[windowAlloc] = f.flags&allocCurrent != 0
	}
	qualified := f.name
	if f.module == "env" {
		qualified = "env." + f.name
	} else {
		qualified = "wasi_snapshot_preview1." + f.name
	}
	return func(ctx context.Context, _ api.Module, stack []uint64) {
		vm, _ := ctx.Value(vmKey{}).(*VM)
		if vm == nil {
			panic(&trap{msg: "host: " + qualified + " called outside a host-driven call"})
		}
		counter.Add(1)
		if !allowed[vm.window] {
			panic(&trap{msg: fmt.Sprintf("restricted_callback: %s may not be called during %s (Envoy traps here and the VM fails)", qualified, vm.window)})
		}
		f.fn(vm, stack)
	}
}

// linked reports whether the host links module.name for a module of the given ABI
// under its profile, and the function if so.
func (h *Host) linked(module, name string, abi string) (*hostFunc, bool) {
	if module == "wasi_snapshot_preview1" || module == "wasi_unstable" {
		module = "wasi"
	}
	f, ok := h.byName[module+"."+name]
	if !ok {
		return nil, false
	}
	if h.opts.Profile == Legacy && f.flags&linkLegacy == 0 {
		return nil, false
	}
	if f.flags&abi021Only != 0 && abi != abi021 {
		return nil, false
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

// ps builds a parameter list of n i32s.
func ps(n int) []api.ValueType {
	s := make([]api.ValueType, n)
	for i := range s {
		s[i] = i32
	}
	return s
}

var r32 = []api.ValueType{api.ValueTypeI32}
