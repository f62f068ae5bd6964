// Package wasmhost runs proxy-wasm modules (the real filter.wasm) on wazero the way
// Envoy runs them, so that a filter that passes here also loads and runs in Envoy. It
// stands in for Envoy in every end-to-end test, in the dev proxy and in the
// benchmarks, so where Envoy is strict, the host is strict too. The facts it reproduces are in docs/proxy-wasm-host.md; the
// import table is laid out one file per group of host functions (imports.go lists
// them), each function with a doc block naming what it returns.
//
// # What it reproduces
//
// Loading (Host.Load) compiles once per process through a shared compilation cache and
// refuses what Envoy refuses, with Envoy's messages: an import Envoy does not link
// ("Failed to load Wasm module due to a missing import: wasi_snapshot_preview1.xyz"),
// proxy_get_log_level without the proxy_abi_version_0_2_1 marker, no ABI marker, no
// allocator (malloc, then proxy_on_memory_allocate), callbacks with the wrong types.
//
// WASI is the host's own table, not wazero's (docs/proxy-wasm-host.md, WASI): fd 1/2
// writes become Info/Error log lines, clocks and random work, poll_oneoff returns no
// events at once, proc_exit returns, the rest are Envoy's stubs. The Legacy profile
// reproduces Envoy 1.33–1.37: poll_oneoff fails with ENOSYS (52), which crashes a Go
// guest that armed a runtime timer at its next GC, and only the shorter WASI list is
// linked.
//
// Restricted windows (docs/proxy-wasm-host.md, Restricted windows): during _initialize
// and inside the allocator only the imports Envoy allows there may be called; any
// other call traps the VM. So a Go guest must not
// call proxy_* (other than proxy_log) from init().
//
// Lifecycle (Module.NewVM, VM.NewStream, Stream methods, Stream.Close, VM.Close):
// _initialize, then on_context_create(root, 0), on_vm_start, on_configure; per stream
// on_context_create(stream, root), the request and response callbacks, then on_log,
// on_done, on_delete (Envoy's HTTP order). Local responses are deferred to the end of
// the callback and always stop the stream. Header maps, buffers, properties, shared
// data (keyed by the vm_id string across VMs, CAS rules), metrics (Envoy's id and
// increment rules), ticks (per root context) and http calls (real HTTP to named
// clusters, answered into the root context, readable only inside the callback) follow
// Envoy's semantics.
//
// Faults: one goroutine at a time is inside a VM (a mutex per VM; a VM belongs to one
// worker, as in Envoy), and tick and http-call callbacks are serialized into it. A VM
// whose call traps or panics is dead: its error (with the guest's stderr, e.g. a Go
// panic's text) is logged at Critical and kept in VM.Err, VM.Dead is closed, and it is
// never called again; every later call fails with ErrVMDead.
//
// Time: Options.Clock drives the wall clock, ticks and http-call timeouts. Tests pass a
// ManualClock and call Advance, which fires due timers synchronously; the dev proxy
// uses real time.
//
// Example (example_test.go) runs filter.wasm through this API.
//
// Tests read what happened through Host.Logs, Host.WaitLog, Host.Metric,
// Host.SharedData, Host.PollOneoffCalls and Host.HostcallCounts.
package wasmhost
