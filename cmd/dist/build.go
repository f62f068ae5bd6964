package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

// options say what to build and from what.
type options struct {
	Repo     string    // the repository's top folder
	Out      string    // where the results go (emptied first)
	Describe string    // git describe --always --dirty
	Commits  string    // git rev-list --count HEAD
	Epoch    time.Time // SOURCE_DATE_EPOCH
	Arches   []string  // Go architectures
	Formats  []string  // "deb", "rpm", "tar.gz"; empty: all three
}

// staged is one file of the package, with its content in a file under the work folder.
type staged struct {
	file
	src string
}

// build writes every package, bundle and SHA256SUMS into o.Out and returns their
// names (SHA256SUMS last).
func build(o options) ([]string, error) {
	version, err := pkgVersion(o.Describe, o.Commits)
	if err != nil {
		return nil, err
	}
	if len(o.Formats) == 0 {
		o.Formats = []string{"deb", "rpm", "tar.gz"}
	}
	work, err := os.MkdirTemp("", "switchyard-dist-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	if err := os.RemoveAll(o.Out); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	common, err := commonFiles(o, work)
	if err != nil {
		return nil, err
	}
	scripts, err := writeScripts(o, work)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, arch := range o.Arches {
		bins, err := buildBinaries(o, work, arch)
		if err != nil {
			return nil, err
		}
		all := append(append([]staged(nil), common...), bins...)
		sort.Slice(all, func(i, j int) bool { return all[i].dst < all[j].dst })
		for _, format := range o.Formats {
			var name string
			switch format {
			case "deb", "rpm":
				name, err = writePackage(o, format, version, arch, all, scripts)
			case "tar.gz":
				name, err = writeBundle(o, version, arch, all)
			default:
				err = fmt.Errorf("unknown format %q (deb, rpm, tar.gz)", format)
			}
			if err != nil {
				return nil, err
			}
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if err := writeSums(o.Out, names); err != nil {
		return nil, err
	}
	return append(names, "SHA256SUMS"), nil
}

// commonFiles stages what every architecture shares: the copied files, the
// filter module, envoy.yaml for this layout and the Debian changelog.
func commonFiles(o options, work string) ([]staged, error) {
	var out []staged
	names := make([]string, 0, len(copied))
	for n := range copied {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, staged{copied[n], filepath.Join(o.Repo, filepath.FromSlash(n))})
	}

	wasm := filepath.Join(work, "filter.wasm")
	if err := goBuild(o, "wasip1", "wasm", wasm, "-buildmode=c-shared",
		"-ldflags", "-X switchyard/filter/polling.BuildVersion="+o.Describe, "./filter"); err != nil {
		return nil, err
	}
	out = append(out, staged{file{dst: wasmDst, mode: 0o644}, wasm})

	repoYAML, err := os.ReadFile(filepath.Join(o.Repo, "envoy.yaml"))
	if err != nil {
		return nil, err
	}
	y, err := packagedEnvoyYAML(string(repoYAML))
	if err != nil {
		return nil, err
	}
	envoy := filepath.Join(work, "envoy.yaml")
	if err := os.WriteFile(envoy, []byte(y), 0o644); err != nil {
		return nil, err
	}
	out = append(out, staged{file{dst: envoyDst, mode: 0o644, config: true}, envoy})

	version, _ := pkgVersion(o.Describe, o.Commits)
	changelog := fmt.Sprintf("%s (%s) unstable; urgency=medium\n\n  * Built from git %s.\n\n -- %s  %s\n",
		pkgName, version, o.Describe, maintainer, o.Epoch.Format(time.RFC1123Z))
	gz := filepath.Join(work, "changelog.gz")
	if err := os.WriteFile(gz, gzipBytes([]byte(changelog)), 0o644); err != nil {
		return nil, err
	}
	out = append(out, staged{file{dst: docDir + "/changelog.gz", mode: 0o644, only: "deb"}, gz})
	return out, nil
}

const maintainer = "Switchyard maintainers <switchyard@example.com>"

// buildBinaries builds the commands for linux/arch (static: CGO_ENABLED=0).
func buildBinaries(o options, work, arch string) ([]staged, error) {
	var out []staged
	for _, b := range binaries {
		if b.optional {
			if _, err := os.Stat(filepath.Join(o.Repo, b.pkg)); err != nil {
				continue
			}
		}
		dst := filepath.Join(work, arch, path.Base(b.dst))
		// -s -w: no symbol table or DWARF (Debian and rpm ship stripped binaries).
		if err := goBuild(o, "linux", arch, dst, "-ldflags", "-s -w", b.pkg); err != nil {
			return nil, err
		}
		out = append(out, staged{file{dst: b.dst, mode: 0o755}, dst})
	}
	return out, nil
}

func goBuild(o options, goos, goarch, out string, args ...string) error {
	cmd := exec.Command("go", append([]string{"build", "-trimpath", "-buildvcs=false", "-o", out}, args...)...)
	cmd.Dir = o.Repo
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s/%s: %v\n%s", args[len(args)-1], goos, goarch, err, b)
	}
	return nil
}

// writeScripts writes each maintainer script (common.sh with its own part) and
// returns their paths by name (postinst, rpm-post, ...).
func writeScripts(o options, work string) (map[string]string, error) {
	dir := filepath.Join(o.Repo, "packaging", "scripts")
	common, err := os.ReadFile(filepath.Join(dir, "common.sh"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, set := range []map[string]string{debScripts, rpmScripts} {
		for _, src := range set {
			part, err := os.ReadFile(filepath.Join(dir, src))
			if err != nil {
				return nil, err
			}
			p := filepath.Join(work, "scripts", src)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
			text := "#!/bin/sh\nset -e\n\n" + string(common) + "\n" + string(part)
			if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
				return nil, err
			}
			out[src] = p
		}
	}
	return out, nil
}

func writePackage(o options, format, version, arch string, all []staged, scripts map[string]string) (string, error) {
	var contents files.Contents
	for _, f := range all {
		if f.only != "" && f.only != format {
			continue
		}
		typ := files.TypeFile
		switch {
		case f.config:
			typ = files.TypeConfigNoReplace
		case format == "rpm" && f.doc != "":
			typ = files.TypeRPMDoc
		}
		contents = append(contents, &files.Content{
			Source:      f.src,
			Destination: f.dst,
			Type:        typ,
			FileInfo:    &files.ContentFileInfo{Owner: "root", Group: "root", Mode: f.mode, MTime: o.Epoch},
		})
	}
	if format == "rpm" {
		// rpm owns only the folders a package lists (dpkg records every parent).
		for _, d := range ownedDirs {
			contents = append(contents, &files.Content{Destination: d, Type: files.TypeDir,
				FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o755, MTime: o.Epoch}})
		}
	}
	info := &nfpm.Info{
		Name:          pkgName,
		Arch:          arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    maintainer,
		Vendor:        "Switchyard",
		License:       "Proprietary",
		Description: "routes requests to registered servers through Envoy\n" +
			"Switchyard is a proxy-wasm filter for Envoy and the registrar service\n" +
			"a CMS registers servers with. This package holds the registrar (a\n" +
			"systemd service), the filter module and an Envoy configuration for\n" +
			"them; Envoy itself comes from Envoy's own packages.",
		MTime: o.Epoch,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Umask:    0o022,
			Suggests: []string{"envoy"},
		},
	}
	if format == "deb" {
		info.Scripts = nfpm.Scripts{PostInstall: scripts[debScripts["postinst"]], PreRemove: scripts[debScripts["prerm"]], PostRemove: scripts[debScripts["postrm"]]}
		info.Deb.Compression = "gzip"
	} else {
		info.Release = "1"
		info.Scripts = nfpm.Scripts{PostInstall: scripts[rpmScripts["post"]], PreRemove: scripts[rpmScripts["preun"]], PostRemove: scripts[rpmScripts["postun"]]}
		info.RPM = nfpm.RPM{Group: "System Environment/Daemons", Summary: "Registrar, proxy-wasm filter and Envoy configuration for request routing", BuildHost: "reproducible", Compression: "gzip", Packager: maintainer}
	}
	info = nfpm.WithDefaults(info)
	p, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	name := p.ConventionalFileName(info)
	var buf bytes.Buffer
	if err := p.Package(info, &buf); err != nil {
		return "", fmt.Errorf("%s for %s: %w", format, arch, err)
	}
	return name, os.WriteFile(filepath.Join(o.Out, name), buf.Bytes(), 0o644)
}

// writeBundle writes the same files as the packages into
// switchyard-<version>-linux-<arch>.tar.gz, under a folder of that name, laid out from
// / (usr/bin/..., etc/switchyard/...), with their folders.
func writeBundle(o options, version, arch string, all []staged) (string, error) {
	base := fmt.Sprintf("%s-%s-linux-%s", pkgName, version, arch)
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	hdr := func(name string, mode int64, typ byte, size int64) *tar.Header {
		return &tar.Header{Typeflag: typ, Name: name, Mode: mode, Size: size, ModTime: o.Epoch,
			Uname: "root", Gname: "root", Format: tar.FormatPAX}
	}
	dirs := map[string]bool{}
	var addDir func(d string) error
	addDir = func(d string) error {
		if d == "." || dirs[d] {
			return nil
		}
		if err := addDir(path.Dir(d)); err != nil {
			return err
		}
		dirs[d] = true
		return tw.WriteHeader(hdr(d+"/", 0o755, tar.TypeDir, 0))
	}
	for _, f := range all {
		if f.only != "" {
			continue
		}
		name := path.Join(base, strings.TrimPrefix(f.dst, "/"))
		if err := addDir(path.Dir(name)); err != nil {
			return "", err
		}
		b, err := os.ReadFile(f.src)
		if err != nil {
			return "", err
		}
		if err := tw.WriteHeader(hdr(name, int64(f.mode), tar.TypeReg, int64(len(b)))); err != nil {
			return "", err
		}
		if _, err := tw.Write(b); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := gz.Close(); err != nil {
		return "", err
	}
	name := base + ".tar.gz"
	return name, os.WriteFile(filepath.Join(o.Out, name), buf.Bytes(), 0o644)
}

// gzipBytes compresses b with no name and no time in the header.
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	gz.Write(b)
	gz.Close()
	return buf.Bytes()
}

// writeSums writes SHA256SUMS as sha256sum(1) does, so `sha256sum -c SHA256SUMS` checks it.
func writeSums(dir string, names []string) error {
	var b strings.Builder
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(h.Sum(nil)), n)
	}
	return os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte(b.String()), 0o644)
}
