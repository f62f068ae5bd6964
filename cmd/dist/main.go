// Command dist builds what an offline machine installs (`make dist`): for each of
// amd64 and arm64 a .deb and an .rpm of the switchyard package, a .tar.gz of the same
// files, and SHA256SUMS over them all, into -out. It uses Go libraries only (nfpm for
// the packages, archive/tar and compress/gzip for the bundle): no Docker, no rpmbuild.
//
// The output is reproducible: the same commit and SOURCE_DATE_EPOCH (default: the
// commit's time) give the same bytes. Every file in every archive carries that time,
// owner root:root and a fixed mode, in a fixed order; gzip headers carry no name and
// no time; the binaries are built with -trimpath, -buildvcs=false and CGO_ENABLED=0.
//
// What goes in the package, and where, is the list in contents (layout.go); the
// systemd units, maintainer scripts and settings file are in packaging/.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

func main() {
	var o options
	flag.StringVar(&o.Out, "out", "dist", "folder the packages, bundles and SHA256SUMS are written to (emptied first)")
	flag.StringVar(&o.Describe, "version", "", "the build's git description (git describe --always --dirty), as `make build` uses it; default: asked of git")
	arches := flag.String("arch", "amd64,arm64", "comma-separated Go architectures to package")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(fmt.Errorf("unexpected argument %q: all settings are flags (see -help)", flag.Arg(0)))
	}
	o.Arches = strings.Split(*arches, ",")
	var err error
	if o.Describe == "" {
		if o.Describe, err = git("describe", "--always", "--dirty"); err != nil {
			fail(err)
		}
	}
	if o.Epoch, err = sourceDateEpoch(os.Getenv("SOURCE_DATE_EPOCH")); err != nil {
		fail(err)
	}
	if o.Commits, err = git("rev-list", "--count", "HEAD"); err != nil {
		fail(err)
	}
	if o.Repo, err = git("rev-parse", "--show-toplevel"); err != nil {
		fail(err)
	}
	files, err := build(o)
	if err != nil {
		fail(err)
	}
	for _, f := range files {
		fmt.Println(f)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "dist:", err)
	os.Exit(1)
}

// sourceDateEpoch is the time every file is stamped with: SOURCE_DATE_EPOCH (seconds
// since 1970) when set, else the time of the commit being built.
func sourceDateEpoch(env string) (time.Time, error) {
	if env == "" {
		s, err := git("log", "-1", "--format=%ct")
		if err != nil {
			return time.Time{}, err
		}
		env = s
	}
	n, err := strconv.ParseInt(env, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a whole number of seconds since 1970", env)
	}
	return time.Unix(n, 0).UTC(), nil
}

func git(args ...string) (string, error) {
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v (run make dist in a git checkout)", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}
