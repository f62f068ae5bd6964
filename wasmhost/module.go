package wasmhost

import (
	"context"
	"crypto/sha256"
	"fmt"
	"runtime"
	"sort"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// ABI version markers (exports) the host recognises.
const (
	abi021 = "proxy_abi_version_0_2_1"
	abi020 = "proxy_abi_version_0_2_0"
	abi010 = "proxy_abi_version_0_1_0"
)

// Module is a compiled, checked .wasm, ready for NewVM.
type Module struct {
	host      *Host
	compiled  wazero.CompiledModule
	abi       string
	allocator string
	imports   []string
}

// Load compiles wasm (through the process-wide compilation cache, so the same bytes
// compile once per process) and checks it as Envoy does before linking, in Envoy's
// order (docs/proxy-wasm-host.md, Loading and linking):
//   - an ABI marker export (proxy_abi_version_0_2_1 or _0_2_0), else "Missing or
//     unknown Proxy-Wasm ABI version";
//   - every import is one the host links for that ABI under its profile, with the
//     same signature, else "Failed to load Wasm module due to a missing import:
//     <module>.<name>" (proxy_get_log_level needs the 0_2_1 marker; the Legacy profile
//     links only the shorter WASI list);
//   - an allocator export, malloc first, then proxy_on_memory_allocate, (i32) -> i32,
//     else "Wasm module is missing malloc function";
//   - a memory export named "memory".
//
// Loading the same bytes again on one Host returns the same Module.
func (h *Host) Load(ctx context.Context, wasm []byte) (*Module, error) {
	sum := sha256.Sum256(wasm)
	h.modMu.Lock()
	defer h.modMu.Unlock()
	if m, ok := h.modules[sum]; ok {
		return m, nil
	}
	// The functions are compiled on every CPU the process may use (the filter's ≈1.8 s on
	// one core is most of a proxy's start).
	cm, err := h.runtime.CompileModule(experimental.WithCompilationWorkers(ctx, runtime.GOMAXPROCS(0)), wasm)
	if err != nil {
		return nil, fmt.Errorf("host: Failed to load Wasm module: %w", err)
	}
	m, err := h.check(cm)
	if err != nil {
		_ = cm.Close(ctx)
		return nil, err
	}
	h.modules[sum] = m
	return m, nil
}

func (h *Host) check(cm wazero.CompiledModule) (*Module, error) {
	m := &Module{host: h, compiled: cm}
	exports := cm.ExportedFunctions()
	for _, marker := range []string{abi021, abi020, abi010} {
		if _, ok := exports[marker]; ok {
			m.abi = marker
			break
		}
	}
	switch m.abi {
	case "":
		return nil, fmt.Errorf("host: Missing or unknown Proxy-Wasm ABI version: the module exports no proxy_abi_version_0_2_1 or proxy_abi_version_0_2_0 function")
	case abi010:
		return nil, fmt.Errorf("host: the module declares Proxy-Wasm ABI 0.1.0 (%s); this host runs 0.2.x modules only: rebuild with a current SDK", abi010)
	}

	for _, def := range cm.ImportedFunctions() {
		mod, name, _ := def.Import()
		qualified := mod + "." + name
		m.imports = append(m.imports, qualified)
		f, ok := h.linked(mod, name, m.abi)
		if !ok {
			why := ""
			switch {
			case name == "proxy_get_log_level" && mod == "env":
				why = " (Envoy links proxy_get_log_level only for modules exporting " + abi021 + ")"
			case h.opts.Profile == Legacy && h.byName["wasi."+name] != nil:
				why = " (only the current profile, Envoy ≈1.38 and later, links it; the legacy profile reproduces Envoy 1.33–1.37)"
			}
			return nil, fmt.Errorf("host: Failed to load Wasm module due to a missing import: %s%s", qualified, why)
		}
		if !sameTypes(def.ParamTypes(), f.params) || !sameTypes(def.ResultTypes(), f.results) {
			return nil, fmt.Errorf("host: Failed to load Wasm module due to a missing import: %s: the module imports it as %s but the host provides %s",
				qualified, signature(def.ParamTypes(), def.ResultTypes()), signature(f.params, f.results))
		}
	}
	for _, mem := range cm.ImportedMemories() {
		mod, name, _ := mem.Import()
		return nil, fmt.Errorf("host: Failed to load Wasm module due to a missing import: %s.%s (a memory; Envoy provides none, the module must define and export its own)", mod, name)
	}
	for name, def := range exports {
		want, ok := exportSignatures[name]
		if ok && (!sameTypes(def.ParamTypes(), want[0]) || !sameTypes(def.ResultTypes(), want[1])) {
			return nil, fmt.Errorf("host: Bad function signature for: %s: the module exports %s, the ABI wants %s",
				name, signature(def.ParamTypes(), def.ResultTypes()), signature(want[0], want[1]))
		}
	}
	sort.Strings(m.imports)
	m.imports = compact(m.imports)

	for _, name := range []string{"malloc", "proxy_on_memory_allocate"} {
		def, ok := exports[name]
		if !ok {
			continue
		}
		if !sameTypes(def.ParamTypes(), ps(1)) || !sameTypes(def.ResultTypes(), r32) {
			return nil, fmt.Errorf("host: Wasm module exports %s as %s, not (i32) -> (i32); Envoy looks up malloc before proxy_on_memory_allocate, so do not export a different malloc", name, signature(def.ParamTypes(), def.ResultTypes()))
		}
		m.allocator = name
		break
	}
	if m.allocator == "" {
		return nil, fmt.Errorf("host: Wasm module is missing malloc function: export malloc or proxy_on_memory_allocate (i32) -> (i32)")
	}
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		return nil, fmt.Errorf("host: Wasm module exports no memory named \"memory\"")
	}
	return m, nil
}

func compact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// Imports returns the module's imports as "module.name", sorted, without duplicates.
func (m *Module) Imports() []string { return append([]string(nil), m.imports...) }

// ABIVersion returns the ABI marker the module exports, e.g. "proxy_abi_version_0_2_0".
func (m *Module) ABIVersion() string { return m.abi }

// exportSignatures are the ABI 0.2.x callbacks the host calls, with their types; cpp-host
// refuses a module exporting one with other types ("Bad function signature").
var exportSignatures = map[string][2][]api.ValueType{
	"_initialize":                 {nil, nil},
	"_start":                      {nil, nil},
	"proxy_on_context_create":     {ps(2), nil},
	"proxy_on_vm_start":           {ps(2), r32},
	"proxy_on_configure":          {ps(2), r32},
	"proxy_on_tick":               {ps(1), nil},
	"proxy_on_request_headers":    {ps(3), r32},
	"proxy_on_request_body":       {ps(3), r32},
	"proxy_on_request_trailers":   {ps(2), r32},
	"proxy_on_response_headers":   {ps(3), r32},
	"proxy_on_response_body":      {ps(3), r32},
	"proxy_on_response_trailers":  {ps(2), r32},
	"proxy_on_http_call_response": {ps(5), nil},
	"proxy_on_queue_ready":        {ps(2), nil},
	"proxy_on_log":                {ps(1), nil},
	"proxy_on_done":               {ps(1), r32},
	"proxy_on_delete":             {ps(1), nil},
	"main":                        {ps(2), r32},
	"__main_void":                 {nil, r32},
}
