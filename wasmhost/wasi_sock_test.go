package wasmhost

import "testing"

// The socket stubs answer NOSYS.
func TestWASISockets(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{})
	for fn, n := range map[string]int{"sock_accept": 3, "sock_recv": 6, "sock_send": 5, "sock_shutdown": 2} {
		if got := hostcall(t, vm, nil, wasi, fn, make([]uint64, n)...); got != errnoNosys {
			t.Errorf("%s = %d, want NOSYS", fn, got)
		}
	}
}
