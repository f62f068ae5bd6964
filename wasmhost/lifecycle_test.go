package wasmhost

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"switchyard/internal/contract"
)

// The start sequence and the stream end run in Envoy's order, with the VM and plugin
// configuration and the plugin_* properties available.
func TestLifecycleOrder(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{Name: "p1", RootID: contract.RootSync, VMID: "vm-a",
		VMConfig: []byte("VMC"), Configuration: []byte("CFG")})
	s, _ := mustRequest(t, vm, "/")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := vm.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range h.Logs() {
		got = append(got, e.Message)
	}
	want := []string{
		"probe init",
		"context_create 1 0",
		"vm_start 1 vm_config=VMC",
		"configure 1 status=0 config=CFG root_id=" + contract.RootSync + " name=p1 vm_id=vm-a log_level=2",
		"context_create 2 1",
		"on_log 2", "on_done 2", "on_delete 2",
		"on_done 1", "on_delete 1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("callbacks:\n got %q\nwant %q", got, want)
	}
	if vm.RootContextID() != 1 {
		t.Errorf("RootContextID = %d, want 1", vm.RootContextID())
	}
	if _, err := vm.NewStream(StreamAttributes{}); !errors.Is(err, ErrVMDead) {
		t.Errorf("NewStream on a closed VM: %v, want ErrVMDead", err)
	}
}

func TestConfigureFalseFailsTheVM(t *testing.T) {
	h := newHost(t, Options{})
	_, err := loadProbe(t, h).NewVM(context.Background(), PluginConfig{Configuration: []byte("reject")})
	if err == nil || !strings.Contains(err.Error(), "on_configure returned false") {
		t.Fatalf("NewVM error = %v, want one naming on_configure", err)
	}
}
