package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// Where Envoy links each kind of import: the extra WASI stubs only in the Current profile,
// proxy_get_log_level only under the 0_2_1 marker, the rest everywhere.
func TestLinkRules(t *testing.T) {
	cases := []struct {
		module, name string
		abi          string
		current      bool
		legacy       bool
	}{
		{"env", "proxy_log", abi020, true, true},
		{"env", "proxy_get_log_level", abi021, true, true},
		{"env", "proxy_get_log_level", abi020, false, false},
		{"wasi_snapshot_preview1", "poll_oneoff", abi020, true, true},
		{"wasi_unstable", "fd_write", abi020, true, true},
		{"wasi_snapshot_preview1", "sched_yield", abi020, true, true},
		{"wasi_snapshot_preview1", "fd_pwrite", abi021, true, false},
		{"wasi_snapshot_preview1", "clock_res_get", abi021, true, false},
		{"wasi_snapshot_preview1", "sock_send", abi021, true, false},
		{"wasi_snapshot_preview1", "xyz", abi021, false, false},
		{"env", "proxy_no_such_call", abi021, false, false},
	}
	hosts := map[Profile]*Host{
		Current: newHost(t, Options{Engine: Interpreter}),
		Legacy:  newHost(t, Options{Profile: Legacy, Engine: Interpreter}),
	}
	for _, tc := range cases {
		for profile, want := range map[Profile]bool{Current: tc.current, Legacy: tc.legacy} {
			if _, got := hosts[profile].linked(tc.module, tc.name, tc.abi); got != want {
				t.Errorf("%s: %s.%s under %s linked = %v, want %v", profile, tc.module, tc.name, tc.abi, got, want)
			}
		}
	}
}

// Which imports each restricted window allows, per profile: a disallowed call traps
// with restricted_callback, an allowed one runs.
func TestWindowsPerProfile(t *testing.T) {
	cases := []struct {
		profile Profile
		w       window
		module  string
		name    string
		args    []uint64
		allowed bool
	}{
		{Current, windowInit, "env", "proxy_log", []uint64{2, 0, 0}, true},
		{Current, windowInit, "env", "proxy_define_metric", []uint64{0, 0, 0, 0}, false},
		{Current, windowInit, wasi, "poll_oneoff", []uint64{0, 0, 0, 0}, true},
		{Legacy, windowInit, wasi, "poll_oneoff", []uint64{0, 0, 0, 0}, false},
		{Current, windowInit, wasi, "clock_res_get", []uint64{0, 0}, true},
		{Legacy, windowInit, wasi, "clock_res_get", []uint64{0, 0}, false},
		{Legacy, windowInit, wasi, "fd_prestat_get", []uint64{3, 0}, true},
		{Current, windowInit, wasi, "proc_exit", []uint64{0}, false},
		{Current, windowAlloc, "env", "proxy_log", []uint64{2, 0, 0}, true},
		{Current, windowAlloc, wasi, "clock_time_get", []uint64{0, 0, 0}, true},
		{Current, windowAlloc, wasi, "poll_oneoff", []uint64{0, 0, 0, 0}, true},
		{Legacy, windowAlloc, wasi, "poll_oneoff", []uint64{0, 0, 0, 0}, false},
		{Current, windowAlloc, wasi, "random_get", []uint64{0, 0}, false},
		{Current, windowAlloc, "env", "proxy_get_property", []uint64{0, 0, 0, 0}, false},
		{Legacy, windowNormal, "env", "proxy_get_property", []uint64{0, 0, 0, 0}, true},
	}
	vms := map[Profile]*VM{}
	for _, p := range []Profile{Current, Legacy} {
		vms[p] = startProbe(t, newHost(t, Options{Profile: p}), PluginConfig{})
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %s %s", tc.profile, tc.w, tc.name), func(t *testing.T) {
			_, err := hostcallIn(vms[tc.profile], nil, tc.w, tc.module, tc.name, tc.args...)
			trapped := err != nil && strings.Contains(err.Error(), "restricted_callback")
			if trapped == tc.allowed {
				t.Fatalf("allowed = %v, want %v (err %v)", !trapped, tc.allowed, err)
			}
		})
	}
}
