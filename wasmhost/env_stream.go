package wasmhost

import (
	"fmt"
	"strings"

	"switchyard/internal/abi"
)

// Stream control and local replies: docs/proxy-wasm-host.md, Stream control and local
// replies. Envoy defers all three to the end of the running callback; the stream
// applies them in applyDeferred (stream.go).

var streamImports = []*hostFunc{proxySendLocalResponse, proxyContinueStream, proxyCloseStream}

// proxySendLocalResponse is env.proxy_send_local_response: answer the stream from the
// proxy. Envoy sends it when the callback returns and stops the stream whatever the
// callback returned; details have spaces turned into '_', header keys are lower-cased
// and added, a gRPC status outside 0..16 sends none. Only a stream's first local reply
// is sent; outside an HTTP stream (the root context) it does nothing.
//
//	proxy_send_local_response(status_code, details_ptr, details_size, body_ptr, body_size,
//	                          headers_ptr, headers_size, grpc_status) -> status
//
// Statuses:
//   - Ok: recorded (or ignored outside a stream).
//   - BadArgument: headers malformed or over 1024 pairs / 1 MiB.
//   - InvalidMemoryAccess: details, body or headers outside guest memory.
//
// Linked everywhere; callbacks only.
var proxySendLocalResponse = envCall("proxy_send_local_response", 8, (*VM).sendLocalResponse)

// proxyContinueStream is env.proxy_continue_stream: resume a direction the guest
// stopped (0 request, 1 response), when the callback returns. After it the direction's
// maps are no longer editable (Envoy drops its pointers to them).
//
//	proxy_continue_stream(stream_type) -> status
//
// Statuses:
//   - Ok: recorded.
//   - BadArgument: from the root context (no effective stream), type 2 (downstream:
//     TCP only) or above 3.
//   - Unimplemented: type 3 (upstream), as in Envoy.
//
// Linked everywhere; callbacks only.
var proxyContinueStream = envCall("proxy_continue_stream", 1, func(vm *VM, s []uint64) abi.Status { return vm.continueStream(uint32(s[0]), false) })

// proxyCloseStream is env.proxy_close_stream: Envoy resets the stream (details
// wasm_close_stream) when the callback returns; the host reports it as a local
// response with status 0 and those details.
//
//	proxy_close_stream(stream_type) -> status
//
// Statuses: as proxy_continue_stream.
//
// Linked everywhere; callbacks only.
var proxyCloseStream = envCall("proxy_close_stream", 1, func(vm *VM, s []uint64) abi.Status { return vm.continueStream(uint32(s[0]), true) })

// Stream types of proxy_continue_stream / proxy_close_stream.
const (
	streamRequest    = 0
	streamResponse   = 1
	streamDownstream = 2 // TCP: no such stream in an HTTP filter
	streamUpstream   = 3 // Envoy: Unimplemented
)

// continueStream records a continue (or close) of direction st of the effective
// stream, applied when the callback returns.
func (vm *VM) continueStream(st uint32, closeIt bool) abi.Status {
	s := vm.effStream
	switch {
	case st == streamUpstream:
		return abi.StatusUnimplemented
	case st > streamUpstream, st == streamDownstream, s == nil:
		return abi.StatusBadArgument
	}
	if closeIt {
		vm.host.log(vm, Debug, fmt.Sprintf("host: stream %d closed by the guest (wasm_close_stream)", s.id))
		if s.pendingLocal == nil {
			// Envoy resets the stream; it is reported as a local response with no status.
			s.pendingLocal = &LocalResponse{Details: "wasm_close_stream", GRPCStatus: -1}
		}
	} else {
		s.pendingResume[st] = true
	}
	vm.deferred = append(vm.deferred, s)
	return abi.StatusOK
}

// sendLocalResponse records the effective stream's local reply, sent when the callback
// returns.
func (vm *VM) sendLocalResponse(s []uint64) abi.Status {
	details, ok1 := vm.mem.Read(uint32(s[1]), uint32(s[2]))
	body, ok2 := vm.mem.Read(uint32(s[3]), uint32(s[4]))
	hdrs, ok3 := vm.mem.Read(uint32(s[5]), uint32(s[6]))
	if !ok1 || !ok2 || !ok3 {
		return abi.StatusInvalidMemoryAccess
	}
	pairs, st := decodePairs(hdrs)
	if st != abi.StatusOK {
		return st
	}
	stream := vm.effStream
	if stream == nil {
		// Envoy acts only with decoder callbacks (an HTTP stream); elsewhere it is a no-op.
		return abi.StatusOK
	}
	lr := &LocalResponse{
		Status:     int(uint32(s[0])),
		Details:    strings.ReplaceAll(string(details), " ", "_"),
		Body:       append([]byte(nil), body...),
		GRPCStatus: int32(uint32(s[7])),
	}
	if lr.GRPCStatus < 0 || lr.GRPCStatus > 16 {
		lr.GRPCStatus = -1
	}
	for _, kv := range pairs {
		lr.Headers.add(kv[0], kv[1])
	}
	if stream.pendingLocal == nil {
		stream.pendingLocal = lr
		vm.deferred = append(vm.deferred, stream)
	}
	return abi.StatusOK
}
