package wasmhost

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// Modules Envoy refuses are refused at Load, with Envoy's message naming the cause.
func TestLoadRefusesWhatEnvoyRefuses(t *testing.T) {
	cases := []struct {
		name    string
		guest   string
		profile Profile
		want    string
	}{
		{"unknown import", "badimport", Current, "Failed to load Wasm module due to a missing import: wasi_snapshot_preview1.xyz"},
		{"no ABI marker", "noabi", Current, "Missing or unknown Proxy-Wasm ABI version"},
		{"no allocator", "noalloc", Current, "Wasm module is missing malloc function"},
		{"get_log_level under 0_2_0", "loglevel020", Current, "missing import: env.proxy_get_log_level"},
		{"Current-only WASI import on legacy Envoy", "wasi533", Legacy, "missing import: wasi_snapshot_preview1.fd_filestat_get"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, Options{Profile: tc.profile, Engine: Interpreter})
			m, err := h.Load(context.Background(), guestBytes(t, tc.guest))
			if err == nil {
				t.Fatalf("Load accepted %s (imports %v); Envoy refuses it", tc.guest, m.Imports())
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadAcceptsWhatEnvoyLinks(t *testing.T) {
	cases := []struct {
		name    string
		guest   string
		profile Profile
		imports []string // some imports the module must report
	}{
		{"probe, current", "probe", Current, []string{"env.proxy_get_log_level", "wasi_snapshot_preview1.poll_oneoff"}},
		{"probe, legacy", "probe", Legacy, []string{"env.proxy_http_call"}},
		{"Current-only WASI import on current Envoy", "wasi533", Current, []string{"wasi_snapshot_preview1.fd_filestat_get"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t, Options{Profile: tc.profile, Engine: Interpreter})
			m, err := h.Load(context.Background(), guestBytes(t, tc.guest))
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range tc.imports {
				if !slices.Contains(m.Imports(), imp) {
					t.Errorf("Imports() = %v, missing %s", m.Imports(), imp)
				}
			}
		})
	}
}

// Loading the same bytes twice on one Host gives the same Module (no recompilation).
func TestLoadCachesModule(t *testing.T) {
	h := newHost(t, Options{Engine: Interpreter})
	a, b := loadProbe(t, h), loadProbe(t, h)
	if a != b {
		t.Fatal("second Load of the same bytes compiled again")
	}
}
