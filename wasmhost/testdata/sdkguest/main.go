// Command sdkguest is a small filter written with proxy-wasm-go-sdk (ABI marker 0_2_0,
// proxy_on_memory_allocate allocator), the SDK the real filter uses. A request
// dispatches an http call from its stream context and pauses; the answer, delivered to
// the root context, is written into the request through the SDK's effective-context
// switch, and the request is resumed.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetHttpContext(func(contextID uint32) types.HttpContext { return &stream{} })
}

type stream struct {
	types.DefaultHttpContext
}

func (s *stream) OnHttpRequestHeaders(numHeaders int, endOfStream bool) types.Action {
	hdrs := [][2]string{{":method", "GET"}, {":path", "/answer"}, {":authority", "up"}}
	if _, err := proxywasm.DispatchHttpCall("up", hdrs, nil, nil, 5000, s.onAnswer); err != nil {
		proxywasm.LogErrorf("sdk: dispatch failed: %v", err)
		return types.ActionContinue
	}
	return types.ActionPause
}

func (s *stream) onAnswer(numHeaders, bodySize, numTrailers int) {
	body, err := proxywasm.GetHttpCallResponseBody(0, bodySize)
	if err != nil {
		proxywasm.LogErrorf("sdk: reading the answer: %v", err)
		return
	}
	if err := proxywasm.AddHttpRequestHeader("x-answer", string(body)); err != nil {
		proxywasm.LogErrorf("sdk: adding the header: %v", err)
		return
	}
	if err := proxywasm.ResumeHttpRequest(); err != nil {
		proxywasm.LogErrorf("sdk: resuming: %v", err)
		return
	}
	proxywasm.LogInfo("sdk: answered")
}
