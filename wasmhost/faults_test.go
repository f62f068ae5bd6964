package wasmhost

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

// A VM that traps or panics is dead: reported, its stderr kept, never called again.
func TestDeadVMIsNeverReused(t *testing.T) {
	cases := []struct {
		path string
		want string // in Err() and in the Critical log line
	}{
		{"/panic", "probe boom"},
		{"/alloc-trap", "restricted_callback"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			h := newHost(t, Options{})
			vm := startProbe(t, h, PluginConfig{})
			if _, _, err := request(t, vm, tc.path); !errors.Is(err, ErrVMDead) {
				t.Fatalf("request error = %v, want ErrVMDead", err)
			}
			select {
			case <-vm.Dead():
			default:
				t.Fatal("Dead() not closed")
			}
			if vm.Err() == nil || !strings.Contains(vm.Err().Error(), tc.want) {
				t.Fatalf("Err() = %v, want it to contain %q", vm.Err(), tc.want)
			}
			critical := 0
			for _, e := range h.Logs() {
				if e.Level == Critical && strings.Contains(e.Message, tc.want) {
					critical++
				}
			}
			if critical != 1 {
				t.Errorf("%d critical log lines about the death, want 1:\n%s", critical, dumpLogs(h))
			}
			calls := h.HostcallCounts()["proxy_log"]
			if _, err := vm.NewStream(StreamAttributes{}); !errors.Is(err, ErrVMDead) {
				t.Errorf("NewStream after death = %v, want ErrVMDead", err)
			}
			if got := h.HostcallCounts()["proxy_log"]; got != calls {
				t.Errorf("the dead VM ran again (proxy_log %d → %d)", calls, got)
			}
			if err := vm.Close(); err != nil {
				t.Errorf("Close of a dead VM: %v", err)
			}
		})
	}
}

// One goroutine at a time inside a VM: concurrent streams on one VM all succeed.
func TestConcurrentStreamsAreSerialized(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				s, err := vm.NewStream(StreamAttributes{})
				if err == nil {
					_, err = s.RequestHeaders(Headers{{":path", "/route"}, {":method", "GET"}, {":authority", "a"}}, true)
				}
				if err == nil {
					err = s.Close()
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if v, _ := h.Metric("probe.requests"); v != 200 {
		t.Errorf("probe.requests = %d, want 200", v)
	}
}
