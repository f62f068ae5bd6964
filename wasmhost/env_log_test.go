package wasmhost

import (
	"testing"

	"switchyard/internal/abi"
)

// proxy_log: a level above critical is BadArgument, a message outside memory
// InvalidMemoryAccess; a good line lands at its level.
func TestProxyLogStatuses(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{})
	msg, n := guestData(t, vm, "hello from the guest")
	cases := []struct {
		name         string
		level, p, sz uint64
		want         abi.Status
	}{
		{"warn", 3, msg, n, abi.StatusOK},
		{"level 6", 6, msg, n, abi.StatusBadArgument},
		{"message outside memory", 2, outside, 100, abi.StatusInvalidMemoryAccess},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusOf(hostcall(t, vm, nil, "env", "proxy_log", tc.level, tc.p, tc.sz)); got != tc.want {
				t.Fatalf("proxy_log = %v, want %v", got, tc.want)
			}
		})
	}
	var warn int
	for _, e := range h.Logs() {
		if e.Message == "hello from the guest" {
			if e.Level != Warn || e.RootID != vm.Config().RootID {
				t.Errorf("line %+v, want level warn and the VM's root id", e)
			}
			warn++
		}
	}
	if warn != 1 {
		t.Errorf("%d lines logged, want exactly the one with a valid level", warn)
	}
}

// proxy_get_log_level reports the host's level, which SetLogLevel changes.
func TestProxyGetLogLevel(t *testing.T) {
	h := newHost(t, Options{})
	vm := startProbe(t, h, PluginConfig{})
	out := guestBuf(t, vm, 4)
	for _, level := range []LogLevel{Info, Error, Trace} {
		h.SetLogLevel(level)
		if st := statusOf(hostcall(t, vm, nil, "env", "proxy_get_log_level", out)); st != abi.StatusOK {
			t.Fatalf("status %v", st)
		}
		if got := readU32(t, vm, out); got != uint32(level) {
			t.Errorf("level = %d, want %d", got, level)
		}
	}
	if st := statusOf(hostcall(t, vm, nil, "env", "proxy_get_log_level", outside)); st != abi.StatusInvalidMemoryAccess {
		t.Errorf("out-parameter outside memory: %v", st)
	}
}
