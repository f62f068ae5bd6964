package main

// Tests of `make dist` with the real tools from Debian's packages (scripts/test-deps
// installs them): lintian, rpmlint, dpkg-deb, rpm, systemd-analyze, dpkg. The packages
// are built once per test binary (built); the reproducibility test builds a second time.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/internal/testkit/apitest"
	"switchyard/internal/testkit/envoycheck"
	"switchyard/internal/testkit/proc"
)

var (
	buildOnce sync.Once
	builtDir  string
	builtOpts options
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// testOptions are the options `make dist` uses for this checkout, writing into out.
func testOptions(t *testing.T, out string) options {
	t.Helper()
	o := options{Out: out, Arches: []string{"amd64", "arm64"}}
	var err error
	if o.Repo, err = git("rev-parse", "--show-toplevel"); err != nil {
		t.Fatal(err)
	}
	if o.Describe, err = git("describe", "--always", "--dirty"); err != nil {
		t.Fatal(err)
	}
	if o.Commits, err = git("rev-list", "--count", "HEAD"); err != nil {
		t.Fatal(err)
	}
	if o.Epoch, err = sourceDateEpoch(""); err != nil {
		t.Fatal(err)
	}
	return o
}

// built builds every package and bundle once per test binary and returns the folder.
func built(t *testing.T) (string, options) {
	t.Helper()
	buildOnce.Do(func() {
		builtDir, buildErr = os.MkdirTemp("", "switchyard-dist-test-")
		if buildErr != nil {
			return
		}
		builtOpts = testOptions(t, builtDir)
		_, buildErr = build(builtOpts)
	})
	if buildErr != nil {
		t.Fatalf("building the packages: %v", buildErr)
	}
	return builtDir, builtOpts
}

// artifact returns the one file in dir whose name matches pattern (filepath.Match).
func artifact(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil || len(m) != 1 {
		t.Fatalf("want one %s in %s, found %v (%v)", pattern, dir, m, err)
	}
	return m[0]
}

// need fails the test when a tool is missing: scripts/test-deps installs each.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run scripts/test-deps (as root), which installs it from Debian's packages", tool)
		}
	}
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPkgVersion(t *testing.T) {
	for _, c := range []struct{ describe, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v1.2.3-rc1", "1.2.3~rc1"},
		{"v1.2.3-4-gabc1234", "1.2.3+4.gabc1234"},
		{"v1.2.3-rc.2-4-gabc1234-dirty", "1.2.3~rc.2+4.gabc1234.dirty"},
		{"v1.2.3-dirty", "1.2.3+dirty"},
		{"07dcdf6", "0.0.0+git288.g07dcdf6"},
		{"07dcdf6-dirty", "0.0.0+git288.g07dcdf6.dirty"},
	} {
		got, err := pkgVersion(c.describe, "288")
		if err != nil || got != c.want {
			t.Errorf("pkgVersion(%q) = %q, %v; want %q", c.describe, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "devel", "v1.2", "release-7"} {
		if _, err := pkgVersion(bad, "288"); err == nil || !strings.Contains(err.Error(), "tag releases as v1.2.3") {
			t.Errorf("pkgVersion(%q): %v, want a refusal saying how to tag", bad, err)
		}
	}
}

// dpkg and rpm order the versions as the commits are ordered.
func TestPkgVersionOrder(t *testing.T) {
	need(t, "dpkg", "rpm")
	order := []string{"0.0.0+git9.gffff", "0.0.0+git10.gaaaa", "1.2.3~rc1", "1.2.3", "1.2.3+4.gabc", "1.2.3+10.gabc", "1.2.4"}
	for i := 0; i+1 < len(order); i++ {
		a, b := order[i], order[i+1]
		if err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run(); err != nil {
			t.Errorf("dpkg: %s is not before %s", a, b)
		}
		out := strings.TrimSpace(run(t, nil, "rpm", "--eval", fmt.Sprintf("%%{lua: print(rpm.vercmp(%q, %q))}", a, b)))
		if out != "-1" {
			t.Errorf("rpm: vercmp(%s, %s) = %s, want -1", a, b, out)
		}
	}
}

func TestPackagedEnvoyYAML(t *testing.T) {
	o := testOptions(t, "")
	repo, err := os.ReadFile(filepath.Join(o.Repo, "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	y, err := packagedEnvoyYAML(string(repo))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"filename: /usr/lib/switchyard/filter.wasm", "port_value: 9000"} {
		if strings.Count(y, want) != 1 {
			t.Errorf("packaged envoy.yaml has %q %d times, want once", want, strings.Count(y, want))
		}
	}
	for _, gone := range []string{"/etc/envoy/filter.wasm", "port_value: 9010", "port_value: 9020"} {
		if strings.Contains(y, gone) && !strings.Contains(strings.SplitN(y, "\nadmin:", 2)[0], gone) {
			t.Errorf("packaged envoy.yaml still has %q outside its comments", gone)
		}
	}
	p := filepath.Join(t.TempDir(), "envoy.yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	problems, err := envoycheck.Check(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := envoycheck.Join(problems); err != nil {
		t.Errorf("packaged envoy.yaml: %v", err)
	}
	// An envoy.yaml the edits no longer fit stops the build, naming what to update.
	changed := strings.Replace(string(repo), "port_value: 9010", "port_value: 9011", 1)
	if _, err := packagedEnvoyYAML(changed); err == nil || !strings.Contains(err.Error(), "update envoyEdits") {
		t.Errorf("an envoy.yaml without the three replicas: %v, want a refusal naming envoyEdits", err)
	}
}

// Two builds of the same commit with the same SOURCE_DATE_EPOCH give the same bytes,
// and SHA256SUMS checks with sha256sum -c.
func TestDistIsReproducible(t *testing.T) {
	dir, o := built(t)
	o.Out = t.TempDir()
	names, err := build(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 7 {
		t.Errorf("built %v, want a deb, an rpm and a tar.gz for amd64 and arm64, and SHA256SUMS", names)
	}
	for _, n := range names {
		a, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(o.Out, n))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds of the same commit", n)
		}
	}
	cmd := exec.Command("sha256sum", "-c", "--strict", "SHA256SUMS")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
	}
}

func TestLintian(t *testing.T) {
	need(t, "lintian")
	dir, _ := built(t)
	for _, arch := range []string{"amd64", "arm64"} {
		deb := artifact(t, dir, "*_"+arch+".deb")
		out, _ := exec.Command("lintian", "--tag-display-limit", "0", deb).CombinedOutput()
		// Every warning is overridden with its reason (packaging/lintian-overrides).
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "E:") || strings.HasPrefix(l, "W:") {
				t.Errorf("lintian %s: %s", filepath.Base(deb), l)
			}
		}
	}
}

func TestRpmlint(t *testing.T) {
	need(t, "rpmlint")
	dir, o := built(t)
	for _, arch := range []string{"x86_64", "aarch64"} {
		rpm := artifact(t, dir, "*."+arch+".rpm")
		out, _ := exec.Command("rpmlint", "-r", filepath.Join(o.Repo, "packaging", "rpmlintrc"), rpm).CombinedOutput()
		if !strings.Contains(string(out), " 0 errors, 0 warnings") {
			t.Errorf("rpmlint %s:\n%s", filepath.Base(rpm), out)
		}
	}
}

// entry is one line of a listing: mode, owner and group, path, conffile or not.
type entry struct {
	mode, owner, path string
	config            bool
}

// wantFiles are the files every package and bundle holds, with mode and owner.
var wantFiles = []entry{
	{"-rw-r--r--", "root/root", "/etc/switchyard/envoy.yaml", true},
	{"-rw-r--r--", "root/root", "/etc/switchyard/registrar.env", true},
	{"-rwxr-xr-x", "root/root", "/usr/bin/switchyard-registrar", false},
	{"-rwxr-xr-x", "root/root", "/usr/lib/switchyard/envoy-config", false},
	{"-rw-r--r--", "root/root", "/usr/lib/switchyard/filter.wasm", false},
	{"-rw-r--r--", "root/root", "/usr/lib/systemd/system/switchyard-envoy.service", false},
	{"-rw-r--r--", "root/root", "/usr/lib/systemd/system/switchyard-registrar.service", false},
	{"-rw-r--r--", "root/root", "/usr/lib/sysusers.d/switchyard.conf", false},
	{"-rw-r--r--", "root/root", "/usr/share/doc/switchyard/README.md", false},
	{"-rw-r--r--", "root/root", "/usr/share/doc/switchyard/copyright", false},
}

func withCtl(t *testing.T, want []entry) []entry {
	o := testOptions(t, "")
	if _, err := os.Stat(filepath.Join(o.Repo, "cmd", "switchyardctl")); err == nil {
		want = append(want, entry{"-rwxr-xr-x", "root/root", "/usr/bin/switchyardctl", false})
	}
	return want
}

func sorted(es []entry) []entry {
	sort.Slice(es, func(i, j int) bool { return es[i].path < es[j].path })
	return es
}

func sameEntries(t *testing.T, what string, got, want []entry) {
	t.Helper()
	got, want = sorted(got), sorted(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s lists\n%v\nwant\n%v", what, got, want)
	}
}

func TestContents(t *testing.T) {
	need(t, "dpkg-deb", "rpm")
	dir, _ := built(t)
	files := withCtl(t, wantFiles)
	for _, arch := range []string{"amd64", "arm64"} {
		deb := artifact(t, dir, "*_"+arch+".deb")
		conffiles := run(t, nil, "dpkg-deb", "--info", deb, "conffiles")
		var got []entry
		for _, l := range strings.Split(strings.TrimSpace(run(t, nil, "dpkg-deb", "--contents", deb)), "\n") {
			f := strings.Fields(l)
			p := strings.TrimPrefix(f[5], ".")
			if strings.HasPrefix(f[0], "d") {
				if f[0] != "drwxr-xr-x" || f[1] != "root/root" {
					t.Errorf("%s: folder %s is %s %s", filepath.Base(deb), p, f[0], f[1])
				}
				continue
			}
			got = append(got, entry{f[0], f[1], p, strings.Contains("\n"+conffiles, "\n"+p+"\n")})
		}
		want := append(append([]entry(nil), files...),
			entry{"-rw-r--r--", "root/root", "/usr/share/doc/switchyard/changelog.gz", false},
			entry{"-rw-r--r--", "root/root", "/usr/share/lintian/overrides/switchyard", false})
		sameEntries(t, filepath.Base(deb), got, want)

		rpmArch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[arch]
		rpm := artifact(t, dir, "*."+rpmArch+".rpm")
		got = nil
		for _, l := range strings.Split(strings.TrimSpace(run(t, nil, "rpm", "-qp", "--qf", `[%{FILEMODES:perms} %{FILEUSERNAME}/%{FILEGROUPNAME} %{FILENAMES} %{FILEFLAGS:fflags}\n]`, rpm)), "\n") {
			f := strings.Fields(l)
			if strings.HasPrefix(f[0], "d") {
				if f[0] != "drwxr-xr-x" || f[1] != "root/root" {
					t.Errorf("%s: folder %s is %s %s", filepath.Base(rpm), f[2], f[0], f[1])
				}
				continue
			}
			flags := ""
			if len(f) > 3 {
				flags = f[3]
			}
			if strings.Contains(flags, "c") && flags != "cn" {
				t.Errorf("%s: %s is %%config without noreplace (%s)", filepath.Base(rpm), f[2], flags)
			}
			got = append(got, entry{f[0], f[1], f[2], strings.Contains(flags, "c")})
		}
		sameEntries(t, filepath.Base(rpm), got, files)
		dirs := run(t, nil, "rpm", "-qp", "--qf", `[%{FILENAMES}\n]`, rpm)
		for _, d := range ownedDirs {
			if !strings.Contains(dirs, d+"\n") {
				t.Errorf("%s does not own %s", filepath.Base(rpm), d)
			}
		}

		tgz := artifact(t, dir, "*-linux-"+arch+".tar.gz")
		got = nil
		for _, h := range tarHeaders(t, tgz) {
			if h.Typeflag == tar.TypeDir {
				continue
			}
			_, p, _ := strings.Cut(h.Name, "/")
			got = append(got, entry{fs.FileMode(h.Mode).String(), h.Uname + "/" + h.Gname, "/" + p, strings.HasPrefix(p, "etc/")})
		}
		sameEntries(t, filepath.Base(tgz), got, files)
	}
}

func tarHeaders(t *testing.T, path string) []*tar.Header {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var hs []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hs
		}
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
}

// extract unpacks a package or bundle into a new folder laid out from / and returns it.
func extract(t *testing.T, pkg string) string {
	t.Helper()
	root := t.TempDir()
	switch {
	case strings.HasSuffix(pkg, ".deb"):
		run(t, nil, "dpkg-deb", "-x", pkg, root)
	case strings.HasSuffix(pkg, ".rpm"):
		run(t, nil, "sh", "-c", `rpm2cpio "$1" | (cd "$2" && cpio -idm --quiet)`, "sh", pkg, root)
	default:
		run(t, nil, "tar", "-xzf", pkg, "-C", root, "--strip-components=1")
	}
	return root
}

// execStart is the unit's ExecStart= command line, split into words.
func execStart(t *testing.T, unit string) []string {
	t.Helper()
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ExecStart=(.*)$`).FindAllStringSubmatch(string(b), -1)
	if len(m) != 1 {
		t.Fatalf("%s: want one ExecStart=, found %d", unit, len(m))
	}
	return strings.Fields(m[0][1])
}

// envFile reads an EnvironmentFile= (KEY=VALUE lines, # comments).
func envFile(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			env = append(env, l)
		}
	}
	return env
}

// registrar is the packaged registrar running in root as its unit starts it.
type registrar struct {
	url  string
	stop func()
}

// startUnit runs the registrar under root with the unit's own ExecStart= command line,
// every absolute path in it taken inside root, and the unit's EnvironmentFile=, on a
// free loopback port; it returns once the registrar logs its address.
func startUnit(t *testing.T, root string) registrar {
	t.Helper()
	words := execStart(t, filepath.Join(root, "usr/lib/systemd/system/switchyard-registrar.service"))
	for i, w := range words {
		if strings.HasPrefix(w, "/") {
			words[i] = filepath.Join(root, w)
		}
	}
	cmd := exec.Command(words[0], words[1:]...)
	cmd.Env = append(append([]string{"PATH=/usr/bin:/bin"}, envFile(t, filepath.Join(root, "etc/switchyard/registrar.env"))...), "REGISTRAR_LISTEN=127.0.0.1:0")
	var mu sync.Mutex
	var out bytes.Buffer
	addr := make(chan string, 1)
	re := regexp.MustCompile(`msg=listening addr=(\S+)`)
	child, err := proc.StartCapture(cmd, &mu, &out, func(line string) {
		if m := re.FindStringSubmatch(line); m != nil {
			select {
			case addr <- m[1]:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-child.Exited():
		case <-time.After(proc.StopWithin):
			cmd.Process.Kill()
			<-child.Exited()
			t.Errorf("the packaged registrar did not stop within %s of SIGINT", proc.StopWithin)
		}
	}
	t.Cleanup(stop)
	select {
	case a := <-addr:
		return registrar{url: "http://" + a, stop: stop}
	case <-child.Exited():
	case <-time.After(proc.ListenWithin):
	}
	mu.Lock()
	defer mu.Unlock()
	t.Fatalf("the packaged registrar (%s) did not start:\n%s", strings.Join(words, " "), out.String())
	return registrar{}
}

// answers checks /healthz, and that /api/servers wants the token and takes it.
func (r registrar) answers(t *testing.T, token string) {
	t.Helper()
	if c := apitest.Call(t, "GET", r.url+"/healthz", "").Code; c != http.StatusOK {
		t.Errorf("/healthz: %d", c)
	}
	if c := apitest.Call(t, "GET", r.url+"/api/servers", "").Code; c != http.StatusUnauthorized {
		t.Errorf("/api/servers without the token: %d, want 401", c)
	}
	if c := apitest.Call(t, "GET", r.url+"/api/servers", "", "Authorization", "Bearer "+token).Code; c != http.StatusOK {
		t.Errorf("/api/servers with the token: %d, want 200", c)
	}
}

// The registrar of each amd64 package and bundle, extracted and started with the
// unit's command line, answers on loopback with the token file the unit names.
func TestPackagedRegistrarServes(t *testing.T) {
	need(t, "dpkg-deb", "rpm2cpio", "cpio")
	dir, _ := built(t)
	for _, pattern := range []string{"*_amd64.deb", "*.x86_64.rpm", "*-linux-amd64.tar.gz"} {
		t.Run(pattern, func(t *testing.T) {
			root := extract(t, artifact(t, dir, pattern))
			if err := os.MkdirAll(filepath.Join(root, "var/lib/switchyard"), 0o750); err != nil {
				t.Fatal(err)
			}
			token := "packaged-registrar-token"
			for p, tok := range map[string]string{tokenPath: token, proxyTokenPath: "packaged-proxy-token"} {
				if err := os.WriteFile(filepath.Join(root, p), []byte(tok+"\n"), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			startUnit(t, root).answers(t, token)
		})
	}
}

// systemd-analyze verify finds nothing wrong in either unit, with the package
// installed into a root that also holds systemd's own targets (multi-user.target...).
// The one message allowed is that /usr/bin/envoy is missing: the package does not
// carry Envoy.
func TestUnitsVerify(t *testing.T) {
	need(t, "systemd-analyze", "dpkg-deb")
	dir, _ := built(t)
	root := extract(t, artifact(t, dir, "*_amd64.deb"))
	targets, _ := filepath.Glob("/lib/systemd/system/*.target")
	if len(targets) == 0 {
		t.Fatal("no systemd targets in /lib/systemd/system: install systemd (scripts/test-deps)")
	}
	for _, tg := range targets {
		if b, err := os.ReadFile(tg); err == nil {
			os.WriteFile(filepath.Join(root, "usr/lib/systemd/system", filepath.Base(tg)), b, 0o644)
		}
	}
	for _, unit := range []string{"switchyard-registrar.service", "switchyard-envoy.service"} {
		out, _ := exec.Command("systemd-analyze", "--root="+root, "verify", filepath.Join(root, "usr/lib/systemd/system", unit)).CombinedOutput()
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l == "" || l == unit+": Command /usr/bin/envoy is not executable: No such file or directory" {
				continue
			}
			t.Errorf("systemd-analyze verify %s: %s", unit, l)
		}
	}
}

// maxExposure is the highest `systemd-analyze security` exposure the registrar's unit
// may have. Measured: 1.1 ("OK"). What is left open is what the registrar needs:
// the network (AF_INET/AF_INET6, no PrivateNetwork, no IPAddressDeny: it listens and
// health-checks targets anywhere its policy allows), AF_UNIX (sd_notify's socket),
// the host's root directory, and reading the clock (ProtectClock's char-rtc:r).
const maxExposure = 1.1

func TestRegistrarUnitSecurity(t *testing.T) {
	need(t, "systemd-analyze")
	o := testOptions(t, "")
	out, err := exec.Command("systemd-analyze", "security", "--offline=yes", filepath.Join(o.Repo, "packaging", "switchyard-registrar.service")).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for switchyard-registrar.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("exposure %.1f", score)
	if score > maxExposure {
		t.Errorf("exposure %.1f, more than %.1f:\n%s", score, maxExposure, out)
	}
}

// Every setting registrar.env shows commented out is one the packaged registrar has,
// at the default its -help states, so the file cannot drift from the program.
func TestRegistrarEnvMatchesHelp(t *testing.T) {
	need(t, "dpkg-deb")
	dir, _ := built(t)
	root := extract(t, artifact(t, dir, "*_amd64.deb"))
	out, err := exec.Command(filepath.Join(root, "usr/bin/switchyard-registrar"), "-help").CombinedOutput()
	if err != nil {
		t.Fatalf("switchyard-registrar -help: %v\n%s", err, out)
	}
	defaults := map[string]string{} // REGISTRAR_X → default as -help prints it, unquoted
	for _, m := range regexp.MustCompile(`\(env (REGISTRAR_[A-Z_]+)\)[^\n]*?(?: \(default ([^)]*)\))?\n`).FindAllStringSubmatch(string(out), -1) {
		defaults[m[1]] = strings.Trim(m[2], `"`)
	}
	b, err := os.ReadFile(filepath.Join(root, "etc/switchyard/registrar.env"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range regexp.MustCompile(`(?m)^#(REGISTRAR_[A-Z_]+)=(.*)$`).FindAllStringSubmatch(string(b), -1) {
		n++
		def, ok := defaults[m[1]]
		if !ok {
			t.Errorf("registrar.env shows %s, which switchyard-registrar -help does not list", m[1])
		} else if m[2] != def {
			t.Errorf("registrar.env shows %s=%s, but its default is %q", m[1], m[2], def)
		}
	}
	if n < 5 {
		t.Errorf("registrar.env shows %d settings:\n%s", n, b)
	}
}

// switchyard-envoy.service's first ExecStartPre, run as the unit has it (%d: the
// credentials directory holding proxy-token, %t: the runtime root), writes an
// envoy.yaml Envoy accepts (envoycheck) with the proxy token in the plugin
// configuration; a token that cannot go into JSON is refused.
func TestEnvoyConfigGetsTheProxyToken(t *testing.T) {
	need(t, "dpkg-deb")
	dir, _ := built(t)
	root := extract(t, artifact(t, dir, "*_amd64.deb"))
	b, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/switchyard-envoy.service"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ExecStartPre=(/usr/lib/switchyard/envoy-config .*)$`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatal("switchyard-envoy.service has no ExecStartPre=/usr/lib/switchyard/envoy-config")
	}
	creds, runtime := t.TempDir(), t.TempDir()
	words := strings.Fields(strings.NewReplacer("%d", creds, "%t", runtime).Replace(m[1]))
	for i, w := range words {
		if strings.HasPrefix(w, "/") && !strings.HasPrefix(w, creds) && !strings.HasPrefix(w, runtime) {
			words[i] = filepath.Join(root, w)
		}
	}
	os.MkdirAll(filepath.Join(runtime, "switchyard-envoy"), 0o700)
	render := func(token string) (string, error) {
		if err := os.WriteFile(filepath.Join(creds, "proxy-token"), []byte(token+"\n"), 0o400); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(words[0], words[1:]...).CombinedOutput()
		return string(out), err
	}
	const token = "0123abcd-proxy.token"
	if out, err := render(token); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(words, " "), err, out)
	}
	rendered := words[len(words)-1]
	y, err := os.ReadFile(rendered)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(y), `"token": "`+token+`"`) || strings.Contains(string(y), `"token": ""`) {
		t.Errorf("the rendered envoy.yaml does not carry the proxy token in its plugin configuration")
	}
	if st, _ := os.Stat(rendered); st.Mode().Perm()&0o077 != 0 {
		t.Errorf("the rendered envoy.yaml (holding the token) is %v, want it private", st.Mode())
	}
	problems, err := envoycheck.Check(rendered)
	if err != nil {
		t.Fatal(err)
	}
	if err := envoycheck.Join(problems); err != nil {
		t.Errorf("rendered envoy.yaml: %v", err)
	}
	if out, err := render(`bad"token`); err == nil || !strings.Contains(out, "the proxy token must be") {
		t.Errorf("a token with a quote: %v %s, want a refusal", err, out)
	}
}
