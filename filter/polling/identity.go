package polling

import (
	"runtime/debug"

	"switchyard/internal/validate"
)

// BuildVersion, when set at link time (-ldflags "-X switchyard/filter/polling.BuildVersion=v1.2.3"),
// is the version the poller reports; otherwise Version derives one from the build info.
var BuildVersion string

// Version is the filter's build version as sent in version=: BuildVersion when set,
// else the module version, else "devel" with the VCS revision the toolchain stamped
// (and "-dirty" for a modified tree).
func Version() string {
	if BuildVersion != "" {
		return BuildVersion
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	v, dirty := "devel", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if len(s.Value) > 12 {
				v = "devel+" + s.Value[:12]
			} else if s.Value != "" {
				v = "devel+" + s.Value
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty {
		v += "-dirty"
	}
	return v
}

// MaxIdentity bounds an identity value (proxy id, cluster, version).
const MaxIdentity = 200

// ValidIdentity reports whether s may be sent as an identity value: 1 to MaxIdentity
// bytes of visible ASCII (no space, no control character). Envoy's node ids
// ("sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local") pass; a value that does not is not
// sent.
func ValidIdentity(s string) bool {
	return len(s) > 0 && len(s) <= MaxIdentity && validate.VisibleASCII(s)
}
