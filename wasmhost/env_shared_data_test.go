package wasmhost

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"switchyard/internal/abi"
	"switchyard/internal/contract"
)

// sharedCAS returns the cas the probe logged for its last shared_get of key.
func sharedCAS(t *testing.T, h *Host, key string) uint32 {
	t.Helper()
	got := logLines(h, "shared_get "+key+" ")
	if len(got) == 0 {
		t.Fatal("no shared_get logged")
	}
	_, c, _ := strings.Cut(got[len(got)-1], "cas=")
	n, err := strconv.ParseUint(c, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(n)
}

// CAS rules: 0 writes unconditionally, a stale cas is CasMismatch (8), the current cas
// writes, and a non-zero cas on an absent key creates it.
func TestSharedDataCAS(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{VMID: "cas"})
	mustRequest(t, vm, "/shared/set?key=k&value=v1&cas=0")
	mustRequest(t, vm, "/shared/get?key=k")
	cas := sharedCAS(t, h, "k")
	steps := []struct{ path, want string }{
		{fmt.Sprintf("/shared/set?key=k&value=v2&cas=%d", cas+1), "shared_set k status=8"},
		{fmt.Sprintf("/shared/set?key=k&value=v2&cas=%d", cas), "shared_set k status=0"},
		{fmt.Sprintf("/shared/set?key=k&value=v3&cas=%d", cas), "shared_set k status=8"},
		{"/shared/set?key=fresh&value=x&cas=77", "shared_set fresh status=0"},
		{"/shared/get?key=absent", "shared_get absent status=1 value= cas=0"},
	}
	for _, st := range steps {
		mustRequest(t, vm, st.path)
		got := logLines(h, strings.Join(strings.Fields(st.want)[:2], " "))
		if last := got[len(got)-1]; last != st.want {
			t.Fatalf("%s: got %q, want %q", st.path, last, st.want)
		}
	}
	if v, c, ok := h.SharedData("cas", "k"); !ok || string(v) != "v2" || c == cas || c == 0 {
		t.Errorf("SharedData = %q, %d, %v; want v2 with a new non-zero cas", v, c, ok)
	}
}

// Shared data is keyed by the vm_id string: VMs with one vm_id (a sync root and a
// router root) share it, another vm_id does not see it, and it goes with the last VM.
func TestSharedDataScope(t *testing.T) {
	h := newHost(t, Options{})
	sync := startProbe(t, h, PluginConfig{RootID: contract.RootSync, VMID: "shared"})
	router := startProbe(t, h, PluginConfig{RootID: contract.RootRouter, VMID: "shared"})
	other := startProbe(t, h, PluginConfig{RootID: contract.RootRouter, VMID: "elsewhere"})

	mustRequest(t, sync, "/shared/set?key=routes&value=web-1&cas=0")
	mustRequest(t, router, "/shared/get?key=routes")
	mustRequest(t, other, "/shared/get?key=routes")
	got := logLines(h, "shared_get routes")
	if len(got) != 2 || !strings.HasPrefix(got[0], "shared_get routes status=0 value=web-1 cas=") {
		t.Fatalf("same vm_id: %q", got)
	}
	if got[1] != "shared_get routes status=1 value= cas=0" {
		t.Errorf("other vm_id: %q, want NotFound", got[1])
	}
	sync.Close()
	if _, _, ok := h.SharedData("shared", "routes"); !ok {
		t.Fatal("data gone while a VM with its vm_id is alive")
	}
	router.Close()
	if _, _, ok := h.SharedData("shared", "routes"); ok {
		t.Error("data kept after the last VM with its vm_id closed")
	}
}

// An empty value is a value (the key stays, as in cpp-host, which has no erase);
// SetSharedData seeds a store a VM then reads; SharedDataSize counts keys and bytes.
func TestSharedDataEmptyValueKeepsKey(t *testing.T) {
	h := newHost(t, Options{})
	h.SetSharedData("seeded", "old", []byte("left by an earlier module"))
	vm := startProbe(t, h, PluginConfig{VMID: "seeded"})
	mustRequest(t, vm, "/shared/get?key=old")
	if got := logLines(h, "shared_get old"); len(got) != 1 || !strings.HasPrefix(got[0], "shared_get old status=0 value=left by an earlier module cas=") {
		t.Fatalf("seeded key read by a VM: %q", got)
	}
	mustRequest(t, vm, "/shared/set?key=k&value=abc&cas=0")
	if keys, bytes := h.SharedDataSize("seeded"); keys != 2 || bytes != len("old")+len("left by an earlier module")+len("k")+len("abc") {
		t.Fatalf("size %d keys %d bytes", keys, bytes)
	}
	mustRequest(t, vm, "/shared/set?key=k&value=&cas=0")
	mustRequest(t, vm, "/shared/get?key=k")
	if got := logLines(h, "shared_get k"); len(got) != 1 || !strings.HasPrefix(got[0], "shared_get k status=0 value= cas=") {
		t.Fatalf("a key written empty: %q, want Ok with an empty value", got)
	}
	if keys, bytes := h.SharedDataSize("seeded"); keys != 2 || bytes != len("old")+len("left by an earlier module")+len("k") {
		t.Errorf("after writing k empty: %d keys %d bytes", keys, bytes)
	}
}

// Shared queues: register, resolve (empty vm_id: the caller's), Empty, enqueue and
// dequeue, NotFound for unknown names and tokens.
func TestSharedQueueStatuses(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{VMID: "q"})
	name, nameLen := guestData(t, vm, "work")
	unknown, unknownLen := guestData(t, vm, "nobody")
	vmID, vmIDLen := guestData(t, vm, "q")
	item, itemLen := guestData(t, vm, "job-1")
	tok, tok2 := guestBuf(t, vm, 4), guestBuf(t, vm, 4)
	outP, outS := outParams(t, vm)
	call := func(fn string, args ...uint64) abi.Status {
		return statusOf(hostcall(t, vm, nil, "env", fn, args...))
	}
	if st := call("proxy_register_shared_queue", name, nameLen, tok); st != abi.StatusOK {
		t.Fatal(st)
	}
	token := uint64(readU32(t, vm, tok))
	steps := []struct {
		name string
		fn   string
		args []uint64
		want abi.Status
	}{
		{"resolve by own vm_id", "proxy_resolve_shared_queue", []uint64{0, 0, name, nameLen, tok2}, abi.StatusOK},
		{"resolve by vm_id", "proxy_resolve_shared_queue", []uint64{vmID, vmIDLen, name, nameLen, tok2}, abi.StatusOK},
		{"resolve unknown", "proxy_resolve_shared_queue", []uint64{0, 0, unknown, unknownLen, tok2}, abi.StatusNotFound},
		{"dequeue empty", "proxy_dequeue_shared_queue", []uint64{token, outP, outS}, abi.StatusEmpty},
		{"enqueue", "proxy_enqueue_shared_queue", []uint64{token, item, itemLen}, abi.StatusOK},
		{"dequeue", "proxy_dequeue_shared_queue", []uint64{token, outP, outS}, abi.StatusOK},
		{"dequeue unknown token", "proxy_dequeue_shared_queue", []uint64{token + 2, outP, outS}, abi.StatusNotFound},
		{"enqueue unknown token", "proxy_enqueue_shared_queue", []uint64{token + 2, item, itemLen}, abi.StatusNotFound},
	}
	for _, st := range steps {
		if got := call(st.fn, st.args...); got != st.want {
			t.Fatalf("%s: %v, want %v", st.name, got, st.want)
		}
	}
	if got := readOut(t, vm, outP, outS); got != "job-1" {
		t.Errorf("dequeued %q", got)
	}
	if got := uint64(readU32(t, vm, tok2)); got != token {
		t.Errorf("resolve gave token %d, register %d", got, token)
	}
}
