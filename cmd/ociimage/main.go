// Command ociimage writes Switchyard's OCI image layouts (what `make oci` runs):
//
//	OUT/filter      the filter, compat Wasm image (one tar+gzip layer with plugin.wasm)
//	OUT/filter-wasm the filter, two-layer Wasm artifact (config + raw module)
//	OUT/registrar   the registrar container image (static binary, user 65532, /data)
//
// and prints each manifest digest: the value of `sha256:` in a WasmPlugin or an
// EnvoyExtensionPolicy, and what a pushed image keeps (`crane push` and `oras cp`
// copy the manifest as it is).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"switchyard/internal/ociimage"
)

func main() {
	wasm := flag.String("filter", "bin/filter.wasm", "the filter module (make build)")
	registrar := flag.String("registrar", "", "the registrar binary, built static for linux/ARCH (CGO_ENABLED=0); none: no registrar image")
	arch := flag.String("arch", "amd64", "the registrar binary's GOARCH, recorded as the image platform")
	out := flag.String("out", "bin/oci", "folder the layouts are written under")
	flag.Parse()
	if err := run(*wasm, *registrar, *arch, *out); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

func run(wasmPath, registrarPath, arch, out string) error {
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		return fmt.Errorf("%v (run make build first)", err)
	}
	type build struct {
		dir, what string
		make      func() (v1.Image, error)
	}
	builds := []build{
		{"filter", "compat Wasm image", func() (v1.Image, error) { return ociimage.FilterCompat(wasm) }},
		{"filter-wasm", "two-layer Wasm artifact", func() (v1.Image, error) { return ociimage.FilterArtifact(wasm) }},
	}
	if registrarPath != "" {
		bin, err := os.ReadFile(registrarPath)
		if err != nil {
			return err
		}
		builds = append(builds, build{"registrar", "registrar image linux/" + arch, func() (v1.Image, error) { return ociimage.Registrar(bin, arch) }})
	}
	for _, b := range builds {
		img, err := b.make()
		if err != nil {
			return fmt.Errorf("building the %s: %w", b.what, err)
		}
		dir := filepath.Join(out, b.dir)
		d, err := ociimage.WriteLayout(dir, img, "latest")
		if err != nil {
			return err
		}
		fmt.Printf("%-22s %-30s %s\n", dir, b.what, d)
	}
	return nil
}
