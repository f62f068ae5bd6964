//go:build wasm

package inhost

// cpuTime has no getrusage to read on wasip1; the package only type-checks there
// (GOOS=wasip1 go vet ./filter/...), it runs natively.
func cpuTime() int64 { return 0 }
