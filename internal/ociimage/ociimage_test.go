package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"switchyard/internal/testkit/bin"
	"switchyard/internal/testkit/wait"
)

// The media types, spelled out here rather than taken from the package, so that a
// change there fails these tests instead of silently following.
const (
	ociIndex    = "application/vnd.oci.image.index.v1+json"
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	ociConfig   = "application/vnd.oci.image.config.v1+json"
	ociLayerGz  = "application/vnd.oci.image.layer.v1.tar+gzip"
	wasmContent = "application/vnd.module.wasm.content.layer.v1+wasm"
	wasmConfig  = "application/vnd.module.wasm.config.v1+json"
)

// onDisk is an OCI image layout as a consumer (crane, oras, a registry) reads it:
// index.json, then blobs by digest, each checked against its digest.
type onDisk struct {
	t   *testing.T
	dir string
}

// blob reads a blob and fails unless its bytes hash to its name.
func (l onDisk) blob(digest string) []byte {
	l.t.Helper()
	algo, hexPart, ok := strings.Cut(digest, ":")
	if !ok || algo != "sha256" {
		l.t.Fatalf("digest %q is not sha256:HEX", digest)
	}
	b, err := os.ReadFile(filepath.Join(l.dir, "blobs", "sha256", hexPart))
	if err != nil {
		l.t.Fatal(err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != hexPart {
		l.t.Fatalf("blob %s holds bytes whose sha256 is %x", digest, sum)
	}
	return b
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
}

type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Config        descriptor        `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Annotations   map[string]string `json:"annotations"`
}

// manifest checks the layout's oci-layout marker and index.json (one manifest, named
// "latest") and returns that manifest, its digest and its raw bytes.
func (l onDisk) manifest() (manifest, string, []byte) {
	l.t.Helper()
	marker, err := os.ReadFile(filepath.Join(l.dir, "oci-layout"))
	if err != nil || !strings.Contains(string(marker), `"imageLayoutVersion"`) {
		l.t.Fatalf("oci-layout marker: %q, %v", marker, err)
	}
	raw, err := os.ReadFile(filepath.Join(l.dir, "index.json"))
	if err != nil {
		l.t.Fatal(err)
	}
	var idx struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		l.t.Fatal(err)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != ociIndex || len(idx.Manifests) != 1 {
		l.t.Fatalf("index.json is not an OCI index of one manifest: %s", raw)
	}
	d := idx.Manifests[0]
	if d.MediaType != ociManifest || d.Annotations[RefNameAnnotation] != "latest" {
		l.t.Errorf("index entry %+v: want an OCI manifest named latest", d)
	}
	b := l.blob(d.Digest)
	if int64(len(b)) != d.Size {
		l.t.Errorf("manifest is %d bytes, index says %d", len(b), d.Size)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		l.t.Fatal(err)
	}
	if m.SchemaVersion != 2 || m.MediaType != ociManifest {
		l.t.Errorf("manifest schemaVersion %d mediaType %q, want 2 and %s", m.SchemaVersion, m.MediaType, ociManifest)
	}
	return m, d.Digest, b
}

// validLayout also reads the layout with go-containerregistry and checks every digest,
// size and diff id the way a registry client would.
func validLayout(t *testing.T, dir string, opts ...validate.Option) v1.Image {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := ii.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img, opts...); err != nil {
		t.Fatalf("the layout in %s is not a valid image: %v", dir, err)
	}
	return img
}

type entry struct {
	hdr  *tar.Header
	body []byte
}

// untar reads a tar+gzip layer into its entries, in order.
func untar(t *testing.T, gz []byte) []entry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("layer is not gzip: %v", err)
	}
	tr := tar.NewReader(zr)
	var out []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("layer is not a tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{h, b})
	}
}

func writeLayout(t *testing.T, img v1.Image, err error) (string, string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	d, err := WriteLayout(dir, img, "latest")
	if err != nil {
		t.Fatal(err)
	}
	return dir, d.String()
}

// TestFilterCompatImage: the layout `make oci` writes for bin/filter.wasm is what the
// Istio and Envoy Gateway fetchers take as the compat variant: an
// OCI manifest annotated module.wasm.image/variant=compat whose one tar+gzip layer
// holds exactly plugin.wasm, byte-equal to the freshly built filter.
func TestFilterCompatImage(t *testing.T) {
	wasm := bin.Read(t, "filter.wasm")
	img, err := FilterCompat(wasm)
	dir, digest := writeLayout(t, img, err)
	l := onDisk{t, dir}
	m, onDiskDigest, _ := l.manifest()
	if onDiskDigest != digest {
		t.Errorf("WriteLayout returned %s, index.json names %s", digest, onDiskDigest)
	}
	if m.Annotations[VariantAnnotation] != "compat" || len(m.Annotations) != 1 {
		t.Errorf("manifest annotations %v, want only module.wasm.image/variant=compat", m.Annotations)
	}
	if m.Config.MediaType != ociConfig {
		t.Errorf("config media type %q, want %s", m.Config.MediaType, ociConfig)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != ociLayerGz {
		t.Fatalf("layers %+v, want one %s", m.Layers, ociLayerGz)
	}
	entries := untar(t, l.blob(m.Layers[0].Digest))
	if len(entries) != 1 {
		t.Fatalf("the layer holds %d entries, want only plugin.wasm", len(entries))
	}
	h := entries[0].hdr
	if h.Name != "plugin.wasm" || h.Typeflag != tar.TypeReg {
		t.Errorf("the layer's entry is %q (type %c), want the regular file plugin.wasm", h.Name, h.Typeflag)
	}
	if !bytes.Equal(entries[0].body, wasm) {
		t.Errorf("plugin.wasm (%d bytes) differs from filter.wasm (%d bytes)", len(entries[0].body), len(wasm))
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(l.blob(m.Config.Digest), &cfg); err != nil {
		t.Fatal(err)
	}
	if !cfg.Created.Time.Equal(Epoch) || cfg.OS != "linux" {
		t.Errorf("config created %v os %q, want %v linux", cfg.Created, cfg.OS, Epoch)
	}
	validLayout(t, dir)
	t.Logf("compat image manifest digest (the sha256 to pin): %s", digest)
}

// TestFilterArtifactImage: the two-layer "oci" variant, which the fetchers take when
// a manifest has exactly two layers, one of them the raw module.
func TestFilterArtifactImage(t *testing.T) {
	wasm := bin.Read(t, "filter.wasm")
	img, err := FilterArtifact(wasm)
	dir, digest := writeLayout(t, img, err)
	l := onDisk{t, dir}
	m, onDiskDigest, _ := l.manifest()
	if onDiskDigest != digest {
		t.Errorf("WriteLayout returned %s, index.json names %s", digest, onDiskDigest)
	}
	if m.Config.MediaType != wasmConfig {
		t.Errorf("config media type %q, want %s", m.Config.MediaType, wasmConfig)
	}
	var types []string
	for _, d := range m.Layers {
		types = append(types, d.MediaType)
	}
	if want := []string{wasmConfig, wasmContent}; !reflect.DeepEqual(types, want) {
		t.Fatalf("layer media types %v, want %v", types, want)
	}
	if got := l.blob(m.Layers[1].Digest); !bytes.Equal(got, wasm) {
		t.Errorf("the module layer (%d bytes) differs from filter.wasm (%d bytes)", len(got), len(wasm))
	}
	if m.Layers[1].Annotations["org.opencontainers.image.title"] != "plugin.wasm" {
		t.Errorf("module layer annotations %v, want title plugin.wasm", m.Layers[1].Annotations)
	}
	var rc struct {
		Type   string `json:"type"`
		Config struct {
			RootIDs []string `json:"rootIds"`
		} `json:"config"`
	}
	if err := json.Unmarshal(l.blob(m.Config.Digest), &rc); err != nil {
		t.Fatal(err)
	}
	if rc.Type != "envoy_proxy" || !reflect.DeepEqual(rc.Config.RootIDs, []string{"sync", "router"}) {
		t.Errorf("runtime config %+v, want envoy_proxy with root ids sync, router", rc)
	}
	// Not an image of tar layers: skip the checks that read layers as tar.
	validLayout(t, dir, validate.Fast)
	t.Logf("two-layer artifact manifest digest: %s", digest)
}

// TestFilterImagesReproducible: the digest depends only on the module, so the
// sha256 users pin is the same whoever builds it, and any change to the module
// changes it.
func TestFilterImagesReproducible(t *testing.T) {
	wasm := bin.Read(t, "filter.wasm")
	for name, build := range map[string]func([]byte) (v1.Image, error){"compat": FilterCompat, "artifact": FilterArtifact} {
		digest := func(b []byte) v1.Hash {
			img, err := build(b)
			if err != nil {
				t.Fatal(err)
			}
			// Through a layout, as `make oci` does.
			dir := filepath.Join(t.TempDir(), "l")
			d, err := WriteLayout(dir, img, "latest")
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		a, b := digest(wasm), digest(bytes.Clone(wasm))
		if a != b {
			t.Errorf("%s: two builds of one module give %s and %s", name, a, b)
		}
		changed := bytes.Clone(wasm)
		changed[len(changed)-1] ^= 1
		if c := digest(changed); c == a {
			t.Errorf("%s: a changed module kept the digest %s", name, a)
		}
	}
}

// buildStaticRegistrar builds the registrar as `make oci` does: CGO_ENABLED=0 for
// linux/amd64, so it runs in an image with no libc.
func buildStaticRegistrar(t *testing.T) []byte {
	t.Helper()
	root, err := bin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "registrar")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./registrar")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the static registrar: %v\n%s", err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRegistrarImage: the registrar image runs the static binary as the non-root
// user 65532, keeps its data on the /data volume and listens on every interface on
// port 9000 (the -data and -listen flags, through their environment variables).
func TestRegistrarImage(t *testing.T) {
	bin := buildStaticRegistrar(t)
	img, err := Registrar(bin, "amd64")
	dir, digest := writeLayout(t, img, err)
	l := onDisk{t, dir}
	m, _, _ := l.manifest()
	if m.Config.MediaType != ociConfig || len(m.Layers) != 1 || m.Layers[0].MediaType != ociLayerGz {
		t.Fatalf("manifest %+v: want an OCI config and one tar+gzip layer", m)
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(l.blob(m.Config.Digest), &cfg); err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", cfg.OS, cfg.Architecture)
	}
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (not root)", c.User)
	}
	if !reflect.DeepEqual(c.Entrypoint, []string{"/usr/local/bin/registrar"}) || len(c.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q, want the binary alone", c.Entrypoint, c.Cmd)
	}
	env := append([]string(nil), c.Env...)
	sort.Strings(env)
	if want := []string{"REGISTRAR_DATA=/data/servers.json", "REGISTRAR_LISTEN=0.0.0.0:9000"}; !reflect.DeepEqual(env, want) {
		t.Errorf("env %q, want %q", env, want)
	}
	if !reflect.DeepEqual(c.Volumes, map[string]struct{}{"/data": {}}) {
		t.Errorf("volumes %v, want /data", c.Volumes)
	}
	if !reflect.DeepEqual(c.ExposedPorts, map[string]struct{}{"9000/tcp": {}}) {
		t.Errorf("exposed ports %v, want 9000/tcp", c.ExposedPorts)
	}

	files := map[string]entry{}
	for _, e := range untar(t, l.blob(m.Layers[0].Digest)) {
		files[e.hdr.Name] = e
		if e.hdr.Name == "" || strings.HasPrefix(e.hdr.Name, "/") || strings.Contains(e.hdr.Name, "..") {
			t.Errorf("layer entry %q is not a clean relative path", e.hdr.Name)
		}
		if !e.hdr.ModTime.Equal(Epoch) {
			t.Errorf("%s has mtime %v, want %v (reproducible)", e.hdr.Name, e.hdr.ModTime, Epoch)
		}
	}
	b, ok := files["usr/local/bin/registrar"]
	if !ok {
		t.Fatalf("no usr/local/bin/registrar in the layer (entries: %v)", keys(files))
	}
	if b.hdr.Typeflag != tar.TypeReg || b.hdr.Mode != 0o755 || b.hdr.Uid != 0 || b.hdr.Gid != 0 {
		t.Errorf("registrar entry type %c mode %o owner %d:%d, want a regular file 0755 owned by root", b.hdr.Typeflag, b.hdr.Mode, b.hdr.Uid, b.hdr.Gid)
	}
	if !bytes.Equal(b.body, bin) {
		t.Errorf("the binary in the image differs from the one built")
	}
	if d, ok := files["data/"]; !ok || d.hdr.Typeflag != tar.TypeDir || d.hdr.Uid != 65532 || d.hdr.Gid != 65532 {
		t.Errorf("data/ entry %+v: want a folder owned by 65532:65532, so the user can write without a volume", d.hdr)
	}
	if p, ok := files["etc/passwd"]; !ok || !strings.Contains(string(p.body), ":65532:65532:") {
		t.Errorf("etc/passwd does not name user 65532")
	}

	// Static: no program interpreter (the dynamic loader), so it runs with no libc.
	f, err := elf.NewFile(bytes.NewReader(b.body))
	if err != nil {
		t.Fatalf("the binary is not ELF: %v", err)
	}
	if f.Machine != elf.EM_X86_64 {
		t.Errorf("ELF machine %v, want x86-64", f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary has a PT_INTERP program header: it is dynamically linked and cannot run in the image")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	validLayout(t, dir)
	t.Logf("registrar image manifest digest: %s", digest)

	// The binary from the layer runs: started with the image's environment, except
	// the listen address (a free loopback port) and the data file (a temp folder).
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		runFromLayer(t, b.body)
	}
}

func runFromLayer(t *testing.T, bin []byte) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "registrar")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(exe)
	cmd.Env = []string{"REGISTRAR_LISTEN=" + addr, "REGISTRAR_DATA=" + filepath.Join(dir, "data", "servers.json")}
	logPath := filepath.Join(dir, "output")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	wait.Eventually(t, 20*time.Second, func() string {
		r, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			output, _ := os.ReadFile(logPath)
			return fmt.Sprintf("GET /healthz: %v; output: %s", err, output)
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			return fmt.Sprintf("GET /healthz: %d", r.StatusCode)
		}
		return ""
	})
}

func keys(m map[string]entry) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
