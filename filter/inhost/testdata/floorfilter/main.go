// Command floorfilter is the do-nothing filter the router's per-request cost is
// compared with: built on the same SDK as filter.wasm (proxy-wasm-go-sdk, same Go,
// same build flags), its HTTP streams share one context object, as the router's do,
// and return Continue at once. What it costs per request is the SDK's and the host's
// floor, which no filter on this SDK can go under.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(uint32) types.HttpContext { return &shared })
}

var shared stream

type stream struct {
	types.DefaultHttpContext
}

func (*stream) OnHttpRequestHeaders(int, bool) types.Action { return types.ActionContinue }
