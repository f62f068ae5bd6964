//go:build tools

// Package switchyard pins the modules the project's parts are being built on, so that
// go.mod holds them while those parts are written in parallel. Each import moves to the
// code that uses it; this file goes once all of them have.
package switchyard

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	_ "github.com/tetratelabs/wazero"
	_ "github.com/tidwall/gjson"
	_ "sigs.k8s.io/yaml"
)
