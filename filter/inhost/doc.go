// Package inhost holds the tests and benchmarks that run the real filter.wasm
// (built by internal/testkit/bin) in the wasmhost, which behaves like Envoy: routing outcomes,
// the sync against a registrar on loopback, reliability under faults, and the
// per-request cost. It has no code of its own outside tests.
package inhost
