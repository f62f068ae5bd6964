// Package ociimage builds Switchyard's OCI images without Docker, on go-containerregistry:
// the filter as a Wasm plugin image in the two forms Istio and Envoy Gateway pull
// (the compat variant and the OCI Wasm artifact of the Wasm image spec; each
// builder's doc says which fetcher takes which), and the registrar as a container
// image. `make oci` writes them as OCI image layouts (cmd/ociimage).
//
// Every build is reproducible: file and config times are fixed (Epoch), owners and
// modes are fixed, nothing of the build machine is recorded, so one input (one .wasm,
// one registrar binary) always gives the same manifest digest — the digest users pin
// in WasmPlugin's or EnvoyExtensionPolicy's `sha256`.
package ociimage

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"switchyard/internal/contract"
)

// The names the Wasm image specifications and their fetchers (istio/istio
// pkg/wasm/imagefetcher.go, copied by Envoy Gateway internal/wasm) look for.
const (
	// VariantAnnotation marks the compat form on the manifest: one tar+gzip layer
	// holding PluginFile.
	VariantAnnotation = "module.wasm.image/variant"
	VariantCompat     = "compat"
	// PluginFile is the file the compat fetcher takes from the layer.
	PluginFile = "plugin.wasm"
	// The two-layer "oci" form: the raw module and its runtime configuration.
	WasmContentMediaType types.MediaType = "application/vnd.module.wasm.content.layer.v1+wasm"
	WasmConfigMediaType  types.MediaType = "application/vnd.module.wasm.config.v1+json"

	// RefNameAnnotation names a manifest in a layout's index.json; `oras cp
	// --from-oci-layout DIR:latest` and `crane push DIR` find it by this.
	RefNameAnnotation = "org.opencontainers.image.ref.name"
	titleAnnotation   = "org.opencontainers.image.title"
)

// Epoch is the time written into every image: fixed, so the digest depends only on
// the contents.
var Epoch = time.Unix(0, 0).UTC()

// FilterCompat is the filter as a compat-variant Wasm image: an OCI manifest with one
// application/vnd.oci.image.layer.v1.tar+gzip layer holding only plugin.wasm, and the
// annotation module.wasm.image/variant=compat. Both Istio and Envoy Gateway pull it;
// it is also what any OCI registry and tool accepts, being an ordinary image.
func FilterCompat(wasm []byte) (v1.Image, error) {
	// The platform a registry UI shows; the fetchers do not read the config. The
	// module runs wherever the proxy runs, but linux/amd64 is what an index lookup
	// defaults to, and this is a plain manifest, not an index.
	img, err := layerImage([]file{{name: PluginFile, mode: 0o444, body: wasm}}, v1.ConfigFile{Architecture: "amd64"})
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, map[string]string{VariantAnnotation: VariantCompat}).(v1.Image), nil
}

// RuntimeConfig is the runtime configuration of the two-layer form (the Wasm image
// specification's "runtime-config.json"). The fetchers do not read it; tools that
// list Wasm images show the root ids.
var RuntimeConfig = []byte(`{"type":"envoy_proxy","abiVersions":["v0.2.0"],"config":{"rootIds":["` +
	contract.RootSync + `","` + contract.RootRouter + `"]}}`)

// FilterArtifact is the filter in the two-layer "oci" form: the manifest's config and
// first layer are RuntimeConfig (application/vnd.module.wasm.config.v1+json), its
// second layer the raw module (application/vnd.module.wasm.content.layer.v1+wasm).
// The fetchers demand exactly two layers and take the one of the content type.
func FilterArtifact(wasm []byte) (v1.Image, error) {
	cfg := static.NewLayer(RuntimeConfig, WasmConfigMediaType)
	mod := static.NewLayer(wasm, WasmContentMediaType)
	a := &artifact{config: RuntimeConfig, layers: []v1.Layer{cfg, mod}}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: WasmConfigMediaType},
	}
	var err error
	if m.Config.Digest, m.Config.Size, err = v1.SHA256(bytes.NewReader(RuntimeConfig)); err != nil {
		return nil, err
	}
	for i, l := range a.layers {
		d, err := partial.Descriptor(l)
		if err != nil {
			return nil, err
		}
		d.Annotations = map[string]string{titleAnnotation: []string{"runtime-config.json", PluginFile}[i]}
		m.Layers = append(m.Layers, *d)
	}
	if a.manifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return partial.CompressedToImage(a)
}

// artifact is an image whose manifest and config are given as bytes: the Wasm
// config media type is not an image config, so go-containerregistry's config
// handling (which writes an OCI image config) cannot produce it.
type artifact struct {
	config, manifest []byte
	layers           []v1.Layer
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return a.config, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range a.layers {
		if d, err := l.Digest(); err == nil && d == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("ociimage: no layer %s in the Wasm artifact", h)
}

// The registrar image's layout and runtime settings: the static binary as a non-root
// user, its data on a volume, the registrar's port 9000.
const (
	RegistrarPath   = "/usr/local/bin/registrar"
	RegistrarUser   = "65532:65532"
	RegistrarUID    = 65532
	RegistrarDataIn = "/data"
	RegistrarPort   = "9000/tcp"
)

// RegistrarEnv is the registrar image's environment: its data file on the volume,
// and a listen address other pods can reach (the registrar's own default is
// loopback, right for one machine, useless in a pod).
var RegistrarEnv = []string{
	"REGISTRAR_DATA=/data/servers.json",
	"REGISTRAR_LISTEN=0.0.0.0:9000",
}

// Registrar is the registrar as a container image for linux/arch: one layer with the
// binary (which must be static: there is no libc in the image) at RegistrarPath, the
// data folder /data owned by the non-root user 65532, and /etc/passwd and /etc/group
// naming that user. The binary runs as that user, with /data a volume.
func Registrar(binary []byte, arch string) (v1.Image, error) {
	files := []file{
		{name: "data/", mode: 0o700, uid: RegistrarUID, dir: true},
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, body: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "etc/passwd", mode: 0o644, body: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/data:/sbin/nologin\n")},
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/local/", mode: 0o755, dir: true},
		{name: "usr/local/bin/", mode: 0o755, dir: true},
		{name: "usr/local/bin/registrar", mode: 0o755, body: binary},
	}
	return layerImage(files, v1.ConfigFile{
		Architecture: arch,
		Config: v1.Config{
			User:         RegistrarUser,
			Entrypoint:   []string{RegistrarPath},
			Env:          append([]string(nil), RegistrarEnv...),
			WorkingDir:   RegistrarDataIn,
			Volumes:      map[string]struct{}{RegistrarDataIn: {}},
			ExposedPorts: map[string]struct{}{RegistrarPort: {}},
			Labels: map[string]string{
				"org.opencontainers.image.title":       "switchyard-registrar",
				"org.opencontainers.image.description": "Switchyard registrar: the service the CMS registers servers with",
			},
		},
	})
}

// layerImage is an OCI image of one tar+gzip layer holding files, with cfg as its
// config (OCI media type) for OS linux, its time Epoch and its rootfs that layer: the
// build FilterCompat and Registrar share.
func layerImage(files []file, cfg v1.ConfigFile) (v1.Image, error) {
	layer, diffID, err := tarLayer(files)
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1),
		mutate.Addendum{Layer: layer, MediaType: types.OCILayer})
	if err != nil {
		return nil, err
	}
	cfg.OS = "linux"
	cfg.Created = v1.Time{Time: Epoch}
	cfg.RootFS = v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{diffID}}
	img, err = mutate.ConfigFile(img, &cfg)
	if err != nil {
		return nil, err
	}
	return mutate.ConfigMediaType(img, types.OCIConfigJSON), nil
}

// WriteLayout writes img as the only manifest of a fresh OCI image layout in dir
// (dir is replaced), named ref in index.json, and returns the manifest digest.
func WriteLayout(dir string, img v1.Image, ref string) (v1.Hash, error) {
	if err := os.RemoveAll(dir); err != nil {
		return v1.Hash{}, err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{RefNameAnnotation: ref})); err != nil {
		return v1.Hash{}, fmt.Errorf("ociimage: writing the layout %s: %w", dir, err)
	}
	return img.Digest()
}

// file is one entry of a layer.
type file struct {
	name string
	mode int64
	uid  int
	dir  bool
	body []byte
}

// tarLayer makes a gzip-compressed OCI layer of files, with fixed times and owners
// (uid = gid) so that equal inputs give equal bytes, and returns it with its DiffID
// (the digest of the uncompressed tar, which the image config lists).
func tarLayer(files []file) (v1.Layer, v1.Hash, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name:    f.name,
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.uid,
			ModTime: Epoch,
			Format:  tar.FormatUSTAR,
		}
		if f.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, v1.Hash{}, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, v1.Hash{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, v1.Hash{}, err
	}
	b := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	diffID, err := layer.DiffID()
	return layer, diffID, err
}
