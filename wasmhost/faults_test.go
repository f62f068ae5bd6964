package wasmhost

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// Restricted windows: during _initialize and inside the allocator only the imports
// Envoy allows there may be called; anything else traps the VM.
func TestRestrictedWindowsTrap(t *testing.T) {
	t.Run("proxy call from init()", func(t *testing.T) {
		h := newHost(t, Options{})
		_, err := loadProbe(t, h).NewVM(context.Background(), PluginConfig{Env: map[string]string{"PROBE_INIT_CALL": "1"}})
		if err == nil {
			t.Fatal("NewVM succeeded though init() called proxy_set_tick_period_milliseconds")
		}
		for _, want := range []string{"restricted_callback", "env.proxy_set_tick_period_milliseconds", "_initialize"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		if len(logLines(h, "probe init")) != 1 {
			t.Error("proxy_log from init() must be allowed")
		}
	})
	t.Run("proxy call from the allocator", func(t *testing.T) {
		h := newHost(t, Options{})
		vm := startProbe(t, h, PluginConfig{})
		_, a, err := request(t, vm, "/alloc-trap")
		if !errors.Is(err, ErrVMDead) || a != Stop {
			t.Fatalf("request = %v, %v; want Stop and ErrVMDead", a, err)
		}
		for _, want := range []string{"restricted_callback", "env.proxy_set_tick_period_milliseconds", "allocator"} {
			if !strings.Contains(vm.Err().Error(), want) {
				t.Errorf("Err() %q does not mention %q", vm.Err(), want)
			}
		}
	})
}

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
