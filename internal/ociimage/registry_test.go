package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"switchyard/internal/testkit/bin"
)

// TestPushAndFetchLikeTheProxies: the layouts `make oci` writes, pushed to a registry
// as `crane push` does (the image read from the layout, written with its manifest as
// is), keep their digest, and a fetch done the way Istio's and Envoy Gateway's image
// fetchers do it (istio/istio pkg/wasm/imagefetcher.go) yields exactly filter.wasm.
// The registry is go-containerregistry's OCI distribution server on 127.0.0.1.
func TestPushAndFetchLikeTheProxies(t *testing.T) {
	wasm := bin.Read(t, "filter.wasm")
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	for _, c := range []struct {
		name  string
		build func([]byte) (v1.Image, error)
	}{{"compat", FilterCompat}, {"artifact", FilterArtifact}} {
		t.Run(c.name, func(t *testing.T) {
			img, err := c.build(wasm)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "layout")
			want, err := WriteLayout(dir, img, "latest")
			if err != nil {
				t.Fatal(err)
			}
			// What crane push does with a layout of one image.
			ii, err := layout.ImageIndexFromPath(dir)
			if err != nil {
				t.Fatal(err)
			}
			im, err := ii.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			fromLayout, err := ii.Image(im.Manifests[0].Digest)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := name.ParseReference(host+"/switchyard/filter-"+c.name+":v1", name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(ref, fromLayout); err != nil {
				t.Fatalf("push: %v", err)
			}

			// What the fetchers do: get the manifest by tag, compare its digest with
			// the sha256 the user pinned, extract the module.
			desc, err := remote.Get(ref)
			if err != nil {
				t.Fatal(err)
			}
			pulled, err := desc.Image()
			if err != nil {
				t.Fatal(err)
			}
			got, _ := pulled.Digest()
			if got != want {
				t.Fatalf("the registry serves digest %s; make oci printed %s: a pinned sha256 would not match", got, want)
			}
			module, err := fetchLikeIstio(pulled)
			if err != nil {
				t.Fatalf("the fetcher's rules refuse the pushed image: %v", err)
			}
			if !bytes.Equal(module, wasm) {
				t.Errorf("the fetched module (%d bytes) is not filter.wasm (%d bytes)", len(module), len(wasm))
			}
		})
	}
}

// fetchLikeIstio applies the image fetcher's rules, in its order: a Docker manifest
// (not ours); else the compat variant (last layer tar+gzip holding plugin.wasm); else
// the oci variant (exactly two layers, one the raw module).
func fetchLikeIstio(img v1.Image) ([]byte, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if m.MediaType == types.DockerManifestSchema2 {
		return nil, errors.New("a Docker manifest: Switchyard's images are OCI")
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) == 0 {
		return nil, errors.New("no layers")
	}
	if mt, _ := layers[len(layers)-1].MediaType(); mt == types.OCILayer {
		rc, err := layers[len(layers)-1].Compressed()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		zr, err := gzip.NewReader(rc)
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err != nil {
				return nil, errors.Join(fs.ErrNotExist, err)
			}
			if filepath.Base(h.Name) == PluginFile {
				return io.ReadAll(tr)
			}
		}
	}
	if len(layers) != 2 {
		return nil, errors.New("neither compat nor a two-layer artifact")
	}
	for _, l := range layers {
		if mt, _ := l.MediaType(); mt == WasmContentMediaType {
			rc, err := l.Compressed()
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(rc)
		}
	}
	return nil, errors.New("no layer of type " + string(WasmContentMediaType))
}
