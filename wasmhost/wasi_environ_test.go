package wasmhost

import (
	"os"
	"testing"
)

// The guest's environment is PluginConfig.Env only, sorted; never the process's; no
// arguments.
func TestWASIEnvironAndArgs(t *testing.T) {
	t.Setenv("WASMHOST_TEST_LEAK", "must not be seen")
	if os.Getenv("WASMHOST_TEST_LEAK") == "" {
		t.Fatal("setenv")
	}
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{Env: map[string]string{"B": "2", "GOGC": "10"}})
	count, size := guestBuf(t, vm, 4), guestBuf(t, vm, 4)
	if e := hostcall(t, vm, nil, wasi, "environ_sizes_get", count, size); e != errnoSuccess {
		t.Fatal(e)
	}
	if c, s := readU32(t, vm, count), readU32(t, vm, size); c != 2 || s != uint32(len("B=2\x00GOGC=10\x00")) {
		t.Fatalf("sizes = %d, %d", c, s)
	}
	ptrs, buf := guestBuf(t, vm, 8), guestBuf(t, vm, 32)
	if e := hostcall(t, vm, nil, wasi, "environ_get", ptrs, buf); e != errnoSuccess {
		t.Fatal(e)
	}
	got, _ := vm.mem.Read(uint32(buf), uint32(len("B=2\x00GOGC=10\x00")))
	if string(got) != "B=2\x00GOGC=10\x00" || readU32(t, vm, ptrs+4) != uint32(buf)+4 {
		t.Errorf("environ = %q", got)
	}
	if e := hostcall(t, vm, nil, wasi, "environ_sizes_get", outside, size); e != errnoInval {
		t.Errorf("outside memory: %d", e)
	}
	if e := hostcall(t, vm, nil, wasi, "args_sizes_get", count, size); e != errnoSuccess || readU32(t, vm, count) != 0 || readU32(t, vm, size) != 0 {
		t.Errorf("args_sizes_get = %d, %d, %d; want no arguments", e, readU32(t, vm, count), readU32(t, vm, size))
	}
	if e := hostcall(t, vm, nil, wasi, "args_get", ptrs, buf); e != errnoSuccess {
		t.Errorf("args_get = %d", e)
	}
}
