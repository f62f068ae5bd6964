package wasmhost

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"switchyard/internal/abi"
)

// HTTP calls: docs/proxy-wasm-host.md, HTTP calls. Real HTTP to a named cluster, off
// the VM's goroutine, answered into the root context that owns the call.

var httpCallImports = []*hostFunc{
	proxyHTTPCall, proxyGrpcCall, proxyGrpcStream, proxyGrpcSend, proxyGrpcCancel, proxyGrpcClose,
}

// proxyHTTPCall is env.proxy_http_call: an HTTP request to a cluster (Options.Clusters,
// Host.SetCluster), answered later by proxy_on_http_call_response(root, token, ...) in
// the root context, even when a stream dispatched it; the stream's end does not cancel
// it. What the answer looks like for a timeout, a broken connection or a body over
// 32 MiB is the table in the doc section. timeout_ms 0 means no timeout. Tokens are 4,
// 8, 12, ...
//
//	proxy_http_call(upstream_ptr, upstream_size, headers_ptr, headers_size, body_ptr, body_size,
//	                trailers_ptr, trailers_size, timeout_ms, ret_token_ptr) -> status
//
// Statuses:
//   - Ok: dispatched; the token was written.
//   - BadArgument: unknown cluster; :method, :path or :authority missing; timeout_ms
//     at or above 2^31 (negative in Envoy); headers or trailers malformed or over
//     1024 pairs / 1 MiB. No callback follows.
//   - InvalidMemoryAccess: arguments outside guest memory.
//
// Linked everywhere; callbacks only.
var proxyHTTPCall = envCall("proxy_http_call", 10, (*VM).httpCall)

// The host has no gRPC clusters, so every service is unknown, which Envoy answers with
// ParseFailure, and no gRPC token ever exists.

// grpcUnknownService answers proxy_grpc_call and proxy_grpc_stream.
func grpcUnknownService(vm *VM, s []uint64) abi.Status {
	vm.host.log(vm, Warn, "host: proxy_grpc_* called, but the wasmhost has no gRPC clusters")
	return abi.StatusParseFailure
}

// grpcUnknownToken answers proxy_grpc_send, _cancel and _close.
func grpcUnknownToken(vm *VM, s []uint64) abi.Status { return abi.StatusNotFound }

// proxyGrpcCall is env.proxy_grpc_call.
//
//	proxy_grpc_call(service_ptr, service_size, service_name_ptr, service_name_size, method_ptr,
//	                method_size, metadata_ptr, metadata_size, message_ptr, message_size,
//	                timeout_ms, ret_token_ptr) -> status
//
// Statuses: ParseFailure (no such service), always. Linked everywhere; callbacks only.
var proxyGrpcCall = envCall("proxy_grpc_call", 12, grpcUnknownService)

// proxyGrpcStream is env.proxy_grpc_stream.
//
//	proxy_grpc_stream(service_ptr, service_size, service_name_ptr, service_name_size, method_ptr,
//	                  method_size, metadata_ptr, metadata_size, ret_token_ptr) -> status
//
// Statuses: ParseFailure (no such service), always. Linked everywhere; callbacks only.
var proxyGrpcStream = envCall("proxy_grpc_stream", 9, grpcUnknownService)

// proxyGrpcSend is env.proxy_grpc_send.
//
//	proxy_grpc_send(token, message_ptr, message_size, end_stream) -> status
//
// Statuses: NotFound (no such token), always. Linked everywhere; callbacks only.
var proxyGrpcSend = envCall("proxy_grpc_send", 4, grpcUnknownToken)

// proxyGrpcCancel is env.proxy_grpc_cancel.
//
//	proxy_grpc_cancel(token) -> status
//
// Statuses: NotFound (no such token), always. Linked everywhere; callbacks only.
var proxyGrpcCancel = envCall("proxy_grpc_cancel", 1, grpcUnknownToken)

// proxyGrpcClose is env.proxy_grpc_close.
//
//	proxy_grpc_close(token) -> status
//
// Statuses: NotFound (no such token), always. Linked everywhere; callbacks only.
var proxyGrpcClose = envCall("proxy_grpc_close", 1, grpcUnknownToken)

// maxHTTPCallBody bounds an answer's body as Envoy's async client does (its default for
// the runtime key http.async_response_buffer_limit); a larger body fails the call.
const maxHTTPCallBody = 32 << 20

// httpResponse is what proxy_on_http_call_response may read (map types 6 and 7, buffer
// type 4); it exists only during that callback.
type httpResponse struct {
	headers, trailers Headers
	body              []byte
	failed            bool
}

// httpCall is one dispatched call. Whoever claims it first (the response, the timeout,
// or the VM's end) decides what the root context sees; the others do nothing.
type httpCall struct {
	vm      *VM
	token   uint32
	cancel  context.CancelFunc
	stop    func() bool
	claimed atomic.Bool
	// answering is set once the answer's headers arrived: a timeout after that resets
	// the call instead of answering 504, as Envoy's router does.
	answering atomic.Bool
}

func (c *httpCall) claim() bool { return c.claimed.CompareAndSwap(false, true) }

// abandon cancels the call without a callback (the root context is gone).
func (c *httpCall) abandon() {
	c.claim()
	c.cancel()
	if c.stop != nil {
		c.stop()
	}
}

// httpCall checks and dispatches a proxy_http_call (see its doc).
func (vm *VM) httpCall(s []uint64) abi.Status {
	upstream, ok1 := vm.mem.Read(uint32(s[0]), uint32(s[1]))
	hdrBytes, ok2 := vm.mem.Read(uint32(s[2]), uint32(s[3]))
	body, ok3 := vm.mem.Read(uint32(s[4]), uint32(s[5]))
	trlBytes, ok4 := vm.mem.Read(uint32(s[6]), uint32(s[7]))
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return abi.StatusInvalidMemoryAccess
	}
	timeoutMS, tokenPtr := uint32(s[8]), uint32(s[9])
	hdrs, st := decodePairs(hdrBytes)
	if st != abi.StatusOK {
		return st
	}
	if _, st := decodePairs(trlBytes); st != abi.StatusOK {
		return st
	}
	base, ok := vm.host.cluster(string(upstream))
	if !ok {
		vm.host.log(vm, Debug, "host: proxy_http_call to unknown cluster "+string(upstream))
		return abi.StatusBadArgument
	}
	var method, path, authority string
	req := Headers{}
	for _, kv := range hdrs {
		k := strings.ToLower(kv[0])
		switch k {
		case ":method":
			method = kv[1]
		case ":path":
			path = kv[1]
		case ":authority", "host":
			if authority == "" {
				authority = kv[1]
			}
		}
		req = append(req, [2]string{k, kv[1]})
	}
	if method == "" || path == "" || authority == "" {
		return abi.StatusBadArgument
	}
	if timeoutMS >= 1<<31 {
		return abi.StatusBadArgument
	}

	ctx, cancel := context.WithCancel(vm.host.ctx)
	hreq, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(base, "/")+path, bytes.NewReader(append([]byte(nil), body...)))
	if err != nil {
		cancel()
		return abi.StatusBadArgument
	}
	hreq.Host = authority
	for _, kv := range req {
		if !strings.HasPrefix(kv[0], ":") && kv[0] != "host" {
			hreq.Header.Add(kv[0], kv[1])
		}
	}
	hreq.ContentLength = int64(len(body))

	vm.nextToken += 4 // tokens 4, 8, …: low 2 bits are the callout type
	c := &httpCall{vm: vm, token: vm.nextToken, cancel: cancel}
	if !vm.putU32(tokenPtr, c.token) {
		cancel()
		return abi.StatusInvalidMemoryAccess
	}
	vm.calls[c.token] = c
	if timeoutMS > 0 { // 0: no timeout
		c.stop = vm.host.clock.AfterFunc(time.Duration(timeoutMS)*time.Millisecond, func() {
			if c.claim() {
				cancel()
				vm.deliver(c, timeoutResponse(c.answering.Load()))
			}
		})
	}
	go vm.host.doHTTP(c, hreq)
	return abi.StatusOK
}

// doHTTP performs the request and delivers the outcome unless the call was claimed.
func (h *Host) doHTTP(c *httpCall, req *http.Request) {
	resp, err := h.client.Do(req)
	if err == nil {
		c.answering.Store(true)
	}
	var r *httpResponse
	if err != nil {
		// Envoy's router answers a connection failure with a local 503.
		body := "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
		r = &httpResponse{
			headers: Headers{{":status", "503"}, {"content-length", itoa(int64(len(body)))}, {"content-type", "text/plain"}},
			body:    []byte(body),
		}
	} else {
		limit := h.httpCallBodyLimit
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		resp.Body.Close()
		if rerr != nil || int64(len(body)) > limit {
			// A broken connection, or Envoy's ExceedResponseBufferLimit: both reach the
			// guest as a reset, so it cannot tell them apart.
			r = &httpResponse{failed: true}
		} else {
			r = &httpResponse{headers: Headers{{":status", itoa(int64(resp.StatusCode))}}, body: body}
			for k, vs := range resp.Header {
				for _, v := range vs {
					r.headers = append(r.headers, [2]string{strings.ToLower(k), v})
				}
			}
			for k, vs := range resp.Trailer {
				for _, v := range vs {
					r.trailers = append(r.trailers, [2]string{strings.ToLower(k), v})
				}
			}
		}
	}
	if !c.claim() {
		return
	}
	if c.stop != nil {
		c.stop()
	}
	c.cancel()
	c.vm.deliver(c, r)
}

// timeoutResponse is what Envoy hands back when the call's timeout expires. Before
// the answer's headers arrived, its router answers with a local 504 ("upstream request
// timeout"), which the async client delivers as an ordinary answer; after them, the
// router can only reset the stream, which the async client delivers as a failure
// (callback (root, token, 0, 0, 0), proxy_get_status (11, "reset")).
func timeoutResponse(afterHeaders bool) *httpResponse {
	if afterHeaders {
		return &httpResponse{failed: true}
	}
	return &httpResponse{
		headers: Headers{{":status", "504"}, {"content-length", "24"}, {"content-type", "text/plain"}},
		body:    []byte("upstream request timeout"),
	}
}

// deliver runs proxy_on_http_call_response(root, token, headers, body, trailers) under
// the VM's lock with the response readable only for the length of that callback. A
// failed call is delivered as (root, token, 0, 0, 0) with proxy_get_status (11, "reset").
func (vm *VM) deliver(c *httpCall, r *httpResponse) {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if _, ok := vm.calls[c.token]; !ok || vm.aliveErr() != nil {
		return
	}
	delete(vm.calls, c.token)
	if r.failed {
		vm.statusCode, vm.statusMsg = abi.StatusBrokenConnection, "reset"
	} else {
		vm.statusCode, vm.statusMsg = abi.StatusOK, ""
	}
	if !r.failed { // after a failure there is no response to read
		vm.httpResp = r
	}
	var nh, nb, nt uint64
	if !r.failed {
		nh, nb, nt = uint64(len(r.headers)), uint64(len(r.body)), uint64(len(r.trailers))
	}
	_, _, _ = vm.call(exHTTPCallResponse, nil, vm.rootID, uint64(vm.rootID), uint64(c.token), nh, nb, nt)
	vm.httpResp = nil
	vm.finishCallback()
}
