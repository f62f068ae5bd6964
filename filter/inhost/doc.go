// Package inhost holds the tests and benchmarks that run the real filter.wasm
// (built by internal/testkit/bin) in the wasmhost, which behaves like Envoy: routing outcomes,
// the sync against a registrar on loopback, reliability under faults, and the
// per-request cost. It has no code of its own outside tests, and it builds natively
// only: it imports the registrar, whose etcd client does not build for wasip1, so the
// Makefile's wasip1 vet leaves it out.
package inhost
