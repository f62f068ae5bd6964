package main

// The maintainer scripts against a scratch root: dpkg itself installs, upgrades,
// removes and purges the .deb there (--root with --force-script-chrootless, so the
// scripts run with DPKG_ROOT set to it), and the rpm's scriptlets run the same way.
// Both need root: the token file is chowned to the switchyard group.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"switchyard/internal/testkit/apitest"
)

// scratchRoot is an empty root with what dpkg and useradd need: a dpkg database and
// /etc/passwd, group, shadow and gshadow holding root only.
func scratchRoot(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the maintainer scripts chown the token file to the switchyard group: run as root")
	}
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range map[string]string{
		"var/lib/dpkg/status":    "",
		"var/lib/dpkg/available": "",
		"etc/passwd":             "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":              "root:x:0:\n",
		"etc/shadow":             "root:*:19000:0:99999:7:::\n",
		"etc/gshadow":            "root:*::\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func dpkg(t *testing.T, root string, args ...string) string {
	t.Helper()
	return run(t, nil, "dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--log=/dev/null"}, args...)...)
}

// account returns the uid and gid of switchyard in root's passwd, failing without it.
func account(t *testing.T, root string) (uid, gid int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if f[0] == "switchyard" && len(f) == 7 {
			uid, _ = strconv.Atoi(f[2])
			gid, _ = strconv.Atoi(f[3])
			if f[5] != "/var/lib/switchyard" || f[6] != "/usr/sbin/nologin" || uid == 0 || uid >= 1000 {
				t.Errorf("switchyard account %q: want a system user (uid below 1000) with home /var/lib/switchyard and no shell", l)
			}
			if g, _ := os.ReadFile(filepath.Join(root, "etc/group")); !strings.Contains(string(g), "switchyard:x:"+f[3]+":") {
				t.Errorf("no switchyard group with gid %s in %s", f[3], g)
			}
			return uid, gid
		}
	}
	t.Fatalf("no switchyard user in %s:\n%s", root, b)
	return 0, 0
}

// installed checks what the postinst leaves: the user, the API token file (0640
// root:switchyard, a 64-hex-digit token unless one was there) and the data folder
// (0750 switchyard), and the proxy token file likewise; it returns the API token.
func installed(t *testing.T, root string) string {
	t.Helper()
	uid, gid := account(t, root)
	var tokens []string
	for _, p := range []string{tokenPath, proxyTokenPath} {
		tok := filepath.Join(root, p)
		st, err := os.Stat(tok)
		if err != nil {
			t.Fatalf("no token file after install: %v", err)
		}
		if sys := st.Sys().(*syscall.Stat_t); st.Mode().Perm() != 0o640 || sys.Uid != 0 || int(sys.Gid) != gid {
			t.Errorf("%s: %v %d:%d, want -rw-r----- 0:%d", p, st.Mode(), sys.Uid, sys.Gid, gid)
		}
		b, err := os.ReadFile(tok)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, strings.TrimSpace(string(b)))
	}
	token := tokens[0]
	if tokens[0] == tokens[1] {
		t.Errorf("the API token and the proxy token are the same")
	}
	data := filepath.Join(root, "var/lib/switchyard")
	st, err := os.Stat(data)
	if err != nil {
		t.Fatalf("no data folder after install: %v", err)
	}
	if sys := st.Sys().(*syscall.Stat_t); st.Mode().Perm() != 0o750 || int(sys.Uid) != uid || int(sys.Gid) != gid {
		t.Errorf("data folder %v %d:%d, want 0750 %d:%d", st.Mode(), sys.Uid, sys.Gid, uid, gid)
	}
	return token
}

func TestDebLifecycleInScratchRoot(t *testing.T) {
	need(t, "dpkg", "useradd", "groupadd")
	dir, o := built(t)
	root := scratchRoot(t)

	// Install: user, token, data folder; the registrar starts with them and answers.
	out := dpkg(t, root, "-i", artifact(t, dir, "*_amd64.deb"))
	token := installed(t, root)
	if len(token) != 64 || strings.Trim(token, "0123456789abcdef") != "" {
		t.Errorf("generated token %q, want 64 hex digits", token)
	}
	for _, l := range strings.Split(out, "\n") {
		if l != "" && !strings.HasPrefix(l, "Selecting") && !strings.HasPrefix(l, "(Reading") &&
			!strings.HasPrefix(l, "Preparing") && !strings.HasPrefix(l, "Unpacking") && !strings.HasPrefix(l, "Setting up") {
			t.Errorf("install printed %q: the maintainer scripts must be quiet", l)
		}
	}
	r := startUnit(t, root)
	r.answers(t, token)
	apitest.Register(t, r.url, "web-1.example", "10.1.2.3:8080", "logs", "Authorization", "Bearer "+token)
	r.stop()

	// The administrator edits a configuration file; reinstalling the same version
	// (configure again) changes nothing.
	env := filepath.Join(root, "etc/switchyard/registrar.env")
	edited := "REGISTRAR_REPLICA_NAME=edited-by-admin\n"
	f, err := os.OpenFile(env, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(edited)
	f.Close()
	dpkg(t, root, "-i", artifact(t, dir, "*_amd64.deb"))
	if got := installed(t, root); got != token {
		t.Errorf("reinstalling changed the token")
	}

	// Upgrade to a newer version: data, token and the edited file are kept.
	newer := o
	newer.Describe, newer.Out, newer.Arches, newer.Formats = "v999.0.0", t.TempDir(), []string{"amd64"}, []string{"deb"}
	if _, err := build(newer); err != nil {
		t.Fatal(err)
	}
	dpkg(t, root, "-i", artifact(t, newer.Out, "*_amd64.deb"))
	if v := run(t, nil, "dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f", "${Version}", "switchyard"); v != "999.0.0" {
		t.Errorf("after the upgrade dpkg has version %q, want 999.0.0", v)
	}
	if got := installed(t, root); got != token {
		t.Errorf("the upgrade changed the token")
	}
	if b, _ := os.ReadFile(env); !strings.HasSuffix(string(b), edited) {
		t.Errorf("the upgrade replaced the edited registrar.env:\n%s", b)
	}
	r = startUnit(t, root)
	if rep := apitest.Call(t, "GET", r.url+"/api/servers", "", "Authorization", "Bearer "+token); !strings.Contains(string(rep.Body), "web-1.example") {
		t.Errorf("after the upgrade the registrar lost web-1.example: %d %s", rep.Code, rep.Body)
	}
	r.stop()

	// Remove: the program goes, data, token and configuration stay.
	dpkg(t, root, "-r", "switchyard")
	if _, err := os.Stat(filepath.Join(root, "usr/bin/switchyard-registrar")); !os.IsNotExist(err) {
		t.Errorf("the registrar is still there after remove (%v)", err)
	}
	for _, keep := range []string{tokenPath, "/var/lib/switchyard/servers.json", "/etc/switchyard/registrar.env"} {
		if _, err := os.Stat(filepath.Join(root, keep)); err != nil {
			t.Errorf("remove deleted %s: %v", keep, err)
		}
	}

	// Purge: data, token and configuration go.
	dpkg(t, root, "-P", "switchyard")
	for _, gone := range []string{tokenPath, proxyTokenPath, "/var/lib/switchyard", "/etc/switchyard/registrar.env", "/etc/switchyard/envoy.yaml"} {
		if _, err := os.Stat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("purge left %s (%v)", gone, err)
		}
	}
}

// The rpm's scriptlets, run as rpm runs them ($1: the count of versions installed
// after the step) with DPKG_ROOT naming a scratch root: %post creates the user, token
// and data folder and keeps them when it runs again (an upgrade); %preun and %postun
// of a removal keep the data.
func TestRPMScriptletsInScratchRoot(t *testing.T) {
	need(t, "rpm", "useradd", "groupadd")
	dir, _ := built(t)
	root := scratchRoot(t)
	rpmFile := artifact(t, dir, "*.x86_64.rpm")
	scriptlet := func(tag, arg string) {
		t.Helper()
		text := run(t, nil, "rpm", "-qp", "--qf", "%{"+tag+"}", rpmFile)
		if !strings.HasPrefix(text, "#!/bin/sh") {
			t.Fatalf("%s of the rpm: %q", tag, text)
		}
		cmd := exec.Command("sh", "-c", text, "sh", arg)
		cmd.Env = append(os.Environ(), "DPKG_ROOT="+root)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("%s %s: %v, printed %q (want quiet success)", tag, arg, err, out)
		}
	}
	scriptlet("POSTIN", "1")
	token := installed(t, root)
	data := filepath.Join(root, "var/lib/switchyard/servers.json")
	if err := os.WriteFile(data, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An upgrade: the new %post ($1=2), then the old %preun and %postun ($1=1).
	scriptlet("POSTIN", "2")
	scriptlet("PREUN", "1")
	scriptlet("POSTUN", "1")
	if got := installed(t, root); got != token {
		t.Errorf("the upgrade's scriptlets changed the token")
	}
	// A removal ($1=0) keeps data and token (rpm has no purge).
	scriptlet("PREUN", "0")
	scriptlet("POSTUN", "0")
	for _, keep := range []string{data, filepath.Join(root, tokenPath)} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("removal deleted %s: %v", keep, err)
		}
	}
}
