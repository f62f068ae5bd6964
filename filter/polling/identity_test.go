package polling

import (
	"strings"
	"testing"
)

func TestValidIdentity(t *testing.T) {
	for _, s := range []string{"edge-1", "sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local", "v1.2.3+dirty", strings.Repeat("x", MaxIdentity)} {
		if !ValidIdentity(s) {
			t.Errorf("ValidIdentity(%q) = false", s)
		}
	}
	for _, s := range []string{"", "a b", "a\nb", "a\x7f", "é", "a\u202eb", strings.Repeat("x", MaxIdentity+1)} {
		if ValidIdentity(s) {
			t.Errorf("ValidIdentity(%q) = true", s)
		}
	}
}

func TestVersion(t *testing.T) {
	v := Version()
	if !ValidIdentity(v) || !strings.HasPrefix(v, "devel") && !strings.HasPrefix(v, "v") {
		t.Errorf("Version() = %q, want devel[+rev] or a module version, sendable as an identity", v)
	}
	BuildVersion = "v9.8.7"
	defer func() { BuildVersion = "" }()
	if v := Version(); v != "v9.8.7" {
		t.Errorf("with BuildVersion set, Version() = %q", v)
	}
}
