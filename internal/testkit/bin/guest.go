package bin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

var guestSeq atomic.Int64

// Guest returns a wasm module built from the main package in dir, a folder such as
// "testdata/probe" relative to the test's package. It is built like filter.wasm
// (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared, -trimpath), once per test process
// however many tests ask for it, and never taken from SWITCHYARD_BIN: test guests
// are not build outputs. A failed build fails the test with the compiler's message.
func Guest(t testing.TB, dir string) []byte {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The key is the absolute folder, so two packages' testdata/probe never share a
	// build; the file name carries a sequence number for the same reason.
	file := fmt.Sprintf("guest-%d-%s.wasm", guestSeq.Add(1), strings.ReplaceAll(filepath.Base(abs), string(filepath.Separator), "_"))
	p, err := buildOnce("guest "+abs, abs, ".", file, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
