package wasmhost

import (
	"bytes"
	"testing"
)

// random_get fills up to 64 KiB; more is INVAL.
func TestWASIRandomGet(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{})
	buf := guestBuf(t, vm, maxRandomGet+1)
	if e := hostcall(t, vm, nil, wasi, "random_get", buf, 32); e != errnoSuccess {
		t.Fatal(e)
	}
	a, _ := vm.mem.Read(uint32(buf), 32)
	a = bytes.Clone(a)
	hostcall(t, vm, nil, wasi, "random_get", buf, 32)
	b, _ := vm.mem.Read(uint32(buf), 32)
	if bytes.Equal(a, b) || bytes.Equal(a, make([]byte, 32)) {
		t.Errorf("two draws %x and %x", a, b)
	}
	if e := hostcall(t, vm, nil, wasi, "random_get", buf, maxRandomGet); e != errnoSuccess {
		t.Errorf("64 KiB: %d", e)
	}
	if e := hostcall(t, vm, nil, wasi, "random_get", buf, maxRandomGet+1); e != errnoInval {
		t.Errorf("64 KiB + 1: %d, want INVAL", e)
	}
	if e := hostcall(t, vm, nil, wasi, "random_get", outside, 32); e != errnoInval {
		t.Errorf("outside memory: %d, want INVAL", e)
	}
}
