package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"switchyard/internal/ociimage"
	"switchyard/internal/testkit/bin"
)

// TestRunWritesLayouts: what `make oci` runs writes one layout per image, each
// holding the manifest the library builds for the same input, and refuses a missing
// module with a hint.
func TestRunWritesLayouts(t *testing.T) {
	wasmPath := bin.Path(t, "filter.wasm")
	out := t.TempDir()
	if err := run(wasmPath, "", "amd64", out); err != nil {
		t.Fatal(err)
	}
	wasm := bin.Read(t, "filter.wasm")
	compat, err := ociimage.FilterCompat(wasm)
	if err != nil {
		t.Fatal(err)
	}
	artifact, err := ociimage.FilterArtifact(wasm)
	if err != nil {
		t.Fatal(err)
	}
	for dir, img := range map[string]interface{ RawManifest() ([]byte, error) }{"filter": compat, "filter-wasm": artifact} {
		p, err := layout.FromPath(filepath.Join(out, dir))
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		ii, err := p.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		im, err := ii.IndexManifest()
		if err != nil || len(im.Manifests) != 1 {
			t.Fatalf("%s: index %+v, %v", dir, im, err)
		}
		raw, _ := img.RawManifest()
		onDisk, err := os.ReadFile(filepath.Join(out, dir, "blobs", "sha256", im.Manifests[0].Digest.Hex))
		if err != nil {
			t.Fatal(err)
		}
		if string(onDisk) != string(raw) {
			t.Errorf("%s: the written manifest differs from the library's", dir)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "registrar")); !os.IsNotExist(err) {
		t.Errorf("no -registrar given, yet a registrar layout: %v", err)
	}
	err = run(filepath.Join(out, "missing.wasm"), "", "amd64", out)
	if err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("a missing module: %v, want a hint to run make build", err)
	}
}
