package wasmhost

import (
	"strings"
	"testing"
)

// proc_exit logs an error and returns: the VM goes on.
func TestWASIProcExitReturns(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{})
	hostcall(t, vm, nil, wasi, "proc_exit", 3)
	lines := logLines(h, "proc_exit called with code 3")
	if len(lines) != 1 {
		t.Fatalf("log lines %q", lines)
	}
	if vm.Err() != nil {
		t.Fatalf("the VM died: %v", vm.Err())
	}
	if _, a := mustRequest(t, vm, "/"); a != Continue {
		t.Errorf("the VM does not run on after proc_exit: %v", a)
	}
	for _, e := range h.Logs() {
		if strings.Contains(e.Message, "proc_exit") && e.Level != Error {
			t.Errorf("level %v, want error", e.Level)
		}
	}
}
