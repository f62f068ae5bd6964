// Command trapguest is a test guest for the dev proxy's promise that a router VM
// which traps is replaced and its request answered 503 (devproxy trap_test.go).
// The real filter never traps on purpose, so this one does, on request: a path
// ending in /trap panics inside on_request_headers, which the host turns into a
// trap. Every other request is answered 200 with the number of requests this VM has
// served, so a test can tell a fresh VM (count 1) from the one that died. The
// "sync" root does nothing.
package main

import (
	"strconv"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &stream{} })
}

// served counts this VM's requests; a VM is one module instance, so it starts at 0
// in every VM.
var served int

type stream struct {
	types.DefaultHttpContext
}

func (*stream) OnHttpRequestHeaders(int, bool) types.Action {
	path, _ := proxywasm.GetHttpRequestHeader(":path")
	if strings.HasSuffix(path, "/trap") {
		panic("trapguest: trap requested by " + path)
	}
	served++
	body := []byte(`{"served":` + strconv.Itoa(served) + `}`)
	if err := proxywasm.SendHttpResponse(200, [][2]string{{"content-type", "application/json"}}, body, -1); err != nil {
		proxywasm.LogError("trapguest: " + err.Error())
	}
	return types.ActionPause
}
