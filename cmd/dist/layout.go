package main

import (
	"fmt"
	"io/fs"
	"regexp"
	"strings"
)

// pkgName is the package's name in every format, and the bundle's prefix.
const pkgName = "switchyard"

// file is one file the package installs: where it goes, its mode, and whether it is a
// configuration file the package manager keeps once the administrator edited it
// (dpkg conffile, rpm %config(noreplace)). Every file is owned by root:root. only
// names the one format that carries it ("deb"); empty: every format and the bundle.
type file struct {
	dst    string
	mode   fs.FileMode
	config bool
	only   string
	doc    string // "doc": marked as documentation in the rpm (rpmlint wants the copyright so)
}

// ownedDirs are the folders that belong to the package alone.
var ownedDirs = []string{"/etc/switchyard", "/usr/lib/switchyard", docDir}

// binary is a Go command the package carries; optional ones are packaged when their
// folder exists in the tree being built.
type binary struct {
	pkg      string
	dst      string
	optional bool
}

var binaries = []binary{
	{pkg: "./registrar", dst: "/usr/bin/switchyard-registrar"},
	{pkg: "./cmd/switchyardctl", dst: "/usr/bin/switchyardctl", optional: true},
}

// Files built or derived rather than copied from packaging/.
const (
	wasmDst        = "/usr/lib/switchyard/filter.wasm"
	envoyDst       = "/etc/switchyard/envoy.yaml"
	unitDir        = "/usr/lib/systemd/system"
	docDir         = "/usr/share/doc/" + pkgName
	tokenPath      = "/etc/switchyard/registrar.token" // created by the postinst, not packaged
	proxyTokenPath = "/etc/switchyard/proxy.token"     // likewise
)

// copied maps files of the repository to where they are installed.
var copied = map[string]file{
	"packaging/switchyard-registrar.service": {dst: unitDir + "/switchyard-registrar.service", mode: 0o644},
	"packaging/switchyard-envoy.service":     {dst: unitDir + "/switchyard-envoy.service", mode: 0o644},
	"packaging/envoy-config":                 {dst: "/usr/lib/switchyard/envoy-config", mode: 0o755},
	"packaging/sysusers.conf":                {dst: "/usr/lib/sysusers.d/switchyard.conf", mode: 0o644},
	"packaging/registrar.env":                {dst: "/etc/switchyard/registrar.env", mode: 0o644, config: true},
	"packaging/copyright":                    {dst: docDir + "/copyright", mode: 0o644, doc: "doc"},
	"packaging/lintian-overrides":            {dst: "/usr/share/lintian/overrides/" + pkgName, mode: 0o644, only: "deb"},
	"README.md":                              {dst: docDir + "/README.md", mode: 0o644, doc: "doc"},
}

// The maintainer scripts: each is packaging/scripts/common.sh followed by its own part.
var (
	debScripts = map[string]string{"postinst": "deb-postinst", "prerm": "deb-prerm", "postrm": "deb-postrm"}
	rpmScripts = map[string]string{"post": "rpm-post", "preun": "rpm-preun", "postun": "rpm-postun"}
)

// envoyEdits turn the repository's envoy.yaml into /etc/switchyard/envoy.yaml: the
// module where the package puts it, and the one registrar the package runs (the
// repository's file lists three replicas). Each old text must occur exactly once, so
// that a change to envoy.yaml that one of them no longer fits stops the build instead
// of shipping a file that still points elsewhere.
var envoyEdits = []struct{ old, new string }{
	{"filename: /etc/envoy/filter.wasm", "filename: " + wasmDst},
	{`        - endpoint: # replica 1
            address:
              socket_address: { address: 127.0.0.1, port_value: 9000 }
        - endpoint: # replica 2
            address:
              socket_address: { address: 127.0.0.1, port_value: 9010 }
        - endpoint: # replica 3
            address:
              socket_address: { address: 127.0.0.1, port_value: 9020 }
`, `        - endpoint: # switchyard-registrar.service (REGISTRAR_LISTEN in /etc/switchyard/registrar.env)
            address:
              socket_address: { address: 127.0.0.1, port_value: 9000 }
`},
}

const envoyHead = `# /etc/switchyard/envoy.yaml, installed by the switchyard package: the project's
# envoy.yaml with the module at ` + wasmDst + ` and the registrar this machine
# runs (switchyard-registrar.service on 127.0.0.1:9000). switchyard-envoy.service runs
# Envoy with it. The package never overwrites this file once you have edited it.
#
`

// packagedEnvoyYAML applies envoyEdits to the repository's envoy.yaml.
func packagedEnvoyYAML(repo string) (string, error) {
	s := repo
	for _, e := range envoyEdits {
		if n := strings.Count(s, e.old); n != 1 {
			return "", fmt.Errorf("envoy.yaml: %q occurs %d times, not once: envoy.yaml changed, so update envoyEdits in cmd/dist/layout.go to set the module path and registrar address of the package", firstLine(e.old), n)
		}
		s = strings.Replace(s, e.old, e.new, 1)
	}
	return envoyHead + s, nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

var (
	describeTag  = regexp.MustCompile(`^v?(\d+\.\d+\.\d+)(?:-((?:alpha|beta|rc|pre)[0-9.]*))?(?:-(\d+)-g([0-9a-f]+))?(-dirty)?$`)
	describeHash = regexp.MustCompile(`^([0-9a-f]{4,40})(-dirty)?$`)
)

// pkgVersion turns git describe's output (with --always --dirty) into a version dpkg
// and rpm both accept and order as the commits are ordered: v1.2.3 → 1.2.3,
// v1.2.3-rc1 → 1.2.3~rc1 (before 1.2.3), v1.2.3-4-gabc → 1.2.3+4.gabc (after it),
// a commit with no tag before it → 0.0.0+git<commits>.g<hash> (commits: how many lead
// to it, so a later commit sorts higher); -dirty adds .dirty.
func pkgVersion(describe, commits string) (string, error) {
	var v string
	dirty := false
	if m := describeTag.FindStringSubmatch(describe); m != nil {
		v = m[1]
		if m[2] != "" {
			v += "~" + m[2]
		}
		if m[3] != "" {
			v += "+" + m[3] + ".g" + m[4]
		}
		dirty = m[5] != ""
	} else if m := describeHash.FindStringSubmatch(describe); m != nil {
		if !regexp.MustCompile(`^\d+$`).MatchString(commits) {
			return "", fmt.Errorf("commit count %q is not a number", commits)
		}
		v = "0.0.0+git" + commits + ".g" + m[1]
		dirty = m[2] != ""
	} else {
		return "", fmt.Errorf("version %q is neither vX.Y.Z[-rcN][-N-gHASH][-dirty] nor a commit hash: tag releases as v1.2.3", describe)
	}
	if dirty {
		if strings.Contains(v, "+") {
			v += ".dirty"
		} else {
			v += "+dirty"
		}
	}
	return v, nil
}
