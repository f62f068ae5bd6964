package wasmhost

import (
	"errors"
	"sync/atomic"

	"switchyard/internal/abi"
)

// Action is what Envoy does after a stream callback.
type Action int

const (
	// Continue passes the headers or data on to the next filter.
	Continue Action = iota
	// Stop holds the stream: the guest returned a stop status, or sent a local
	// response (which always stops, whatever the callback returned).
	Stop
)

func (a Action) String() string {
	if a == Continue {
		return "Continue"
	}
	return "Stop"
}

// LocalResponse is a reply the guest sent with proxy_send_local_response, as Envoy
// would send it: Details with spaces turned into '_', header keys lower-cased,
// GRPCStatus -1 when the guest gave none in 0..16.
type LocalResponse struct {
	Status     int
	Details    string
	Body       []byte
	Headers    Headers
	GRPCStatus int32
}

// StreamAttributes are the connection facts of a request that do not come from its
// headers. request.path, request.method, request.host and request.scheme are read from
// the request headers; request.id from RequestID, else the x-request-id header.
type StreamAttributes struct {
	SourceAddress string // source.address, "ip:port"
	RequestID     string // request.id
}

// Upstream is what Envoy's stream info says about the upstream by the time the
// response headers reach the filter (docs/proxy-wasm-host.md, "What the filter is
// handed when the upstream fails"): an upstream's own answer has no flags, details
// "via_upstream" and the address it came from; a local reply after a connect
// failure, a reset or a timeout has the flags and details Envoy's router sets.
type Upstream struct {
	// Flags is response.flags: Envoy's legacy response-flag bits (UF 0x20, UC 0x40,
	// UR 0x10, UT 0x4, DF 0x4000000, ...); 0 for none.
	Flags uint64
	// CodeDetails is response.code_details; "" leaves the property absent.
	CodeDetails string
	// Address is upstream.address, "ip:port" of the upstream host the request was
	// sent to (and upstream.port its port); "" when no host was chosen (absent).
	Address string
}

// Stream is one HTTP stream (a stream context of a VM). Its methods take the VM's lock:
// call them from one goroutine at a time per stream, in the order Envoy would.
type Stream struct {
	vm    *VM
	id    uint32
	attrs StreamAttributes

	req, reqTrailers, resp, respTrailers Headers
	haveReq, haveReqTrailers             bool
	haveResp, haveRespTrailers           bool
	reqBody, respBody                    []byte
	haveReqBody, haveRespBody            bool
	bufferingReq, bufferingResp          bool
	reqDone, respDone                    bool // proxy_continue_stream applied: edits are refused

	pendingLocal   *LocalResponse
	pendingResume  [2]bool
	local          atomic.Pointer[LocalResponse]
	resumed        [2]atomic.Int32
	closed, ending bool
	props          map[string][]byte
	upstream       Upstream
}

// ID returns the stream's context id.
func (s *Stream) ID() uint32 { return s.id }

// RequestHeaders runs proxy_on_request_headers(stream, n, endOfStream) with h as the
// request header map (keys lower-cased). On a dead VM it returns Stop and an error
// wrapping ErrVMDead: a fail-closed filter stops the request.
func (s *Stream) RequestHeaders(h Headers, endOfStream bool) (Action, error) {
	vm := s.vm
	vm.mu.Lock()
	defer vm.mu.Unlock()
	s.req, s.haveReq = lowerCopy(h), true
	return s.run(exRequestHeaders, uint64(len(s.req)), boolU64(endOfStream))
}

// RequestBody runs proxy_on_request_body with b. When the previous body callback
// returned StopIterationAndBuffer, b is appended to the buffered body and the guest is
// told the whole size, as Envoy does.
func (s *Stream) RequestBody(b []byte, endOfStream bool) (Action, error) {
	vm := s.vm
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if !s.bufferingReq {
		s.reqBody = s.reqBody[:0]
	}
	s.reqBody, s.haveReqBody = append(s.reqBody, b...), true
	a, buffering, err := s.runBody(exRequestBody, len(s.reqBody), endOfStream)
	s.bufferingReq = buffering
	return a, err
}

// RequestTrailers runs proxy_on_request_trailers with h as the trailer map.
func (s *Stream) RequestTrailers(h Headers) (Action, error) {
	vm := s.vm
	vm.mu.Lock()
	defer vm.mu.Unlock()
	s.reqTrailers, s.haveReqTrailers = lowerCopy(h), true
	return s.run(exRequestTrailers, uint64(len(s.reqTrailers)), 0)
}

// SetUpstream records what the response.flags, response.code_details and
// upstream.* properties give from now on; call it before ResponseHeaders, as Envoy has
// set its stream info by the time it calls the filter.
func (s *Stream) SetUpstream(u Upstream) {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	s.upstream = u
}

// ResponseHeaders runs proxy_on_response_headers with h as the response header map.
func (s *Stream) ResponseHeaders(h Headers, endOfStream bool) (Action, error) {
	vm := s.vm
	vm.mu.Lock()
	defer vm.mu.Unlock()
	s.resp, s.haveResp = lowerCopy(h), true
	return s.run(exResponseHeaders, uint64(len(s.resp)), boolU64(endOfStream))
}

// ResponseBody runs proxy_on_response_body, buffering like RequestBody.
func (s *Stream) ResponseBody(b []byte, endOfStream bool) (Action, error) {
	vm := s.vm
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if !s.bufferingResp {
		s.respBody = s.respBody[:0]
	}
	s.respBody, s.haveRespBody = append(s.respBody, b...), true
	a, buffering, err := s.runBody(exResponseBody, len(s.respBody), endOfStream)
	s.bufferingResp = buffering
	return a, err
}

// RequestHeaderMap returns a copy of the current request headers, with the guest's
// edits.
func (s *Stream) RequestHeaderMap() Headers {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	return append(Headers(nil), s.req...)
}

// ResponseHeaderMap returns a copy of the current response headers, with the guest's
// edits.
func (s *Stream) ResponseHeaderMap() Headers {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	return append(Headers(nil), s.resp...)
}

// RequestBodyBytes returns a copy of the current (buffered) request body with the
// guest's edits.
func (s *Stream) RequestBodyBytes() []byte {
	s.vm.mu.Lock()
	defer s.vm.mu.Unlock()
	return append([]byte(nil), s.reqBody...)
}

// LocalResponse returns the local reply the guest sent, or nil. It becomes non-nil
// only when the callback that sent it has returned (Envoy defers it to then), and may
// be read at any time without the VM's lock.
func (s *Stream) LocalResponse() *LocalResponse { return s.local.Load() }

// Resumed reports how many times the guest called proxy_continue_stream for the request
// (0) and response (1) directions, counted when the calling callback returned. A
// proxy that honoured Stop waits for this to resume the stream.
func (s *Stream) Resumed() (request, response int) {
	return int(s.resumed[0].Load()), int(s.resumed[1].Load())
}

// Close ends the stream as Envoy's HTTP connection manager does: proxy_on_log, then
// proxy_on_done, then proxy_on_delete. It is idempotent. Http calls the stream's
// callbacks dispatched keep running: they belong to the root context.
func (s *Stream) Close() error {
	vm := s.vm
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	defer delete(vm.streams, s.id)
	if err := vm.aliveErr(); err != nil {
		return err
	}
	s.ending = true
	for _, ex := range []export{exLog, exDone, exDelete} {
		if _, _, err := vm.call(ex, s, s.id, uint64(s.id)); err != nil {
			return err
		}
		vm.finishCallback()
	}
	return nil
}

// run calls a headers or trailers callback and turns its result into what Envoy does
// next (docs/proxy-wasm-host.md, Callback results): any non-zero result, or a local
// response sent during the callback, stops the stream.
func (s *Stream) run(ex export, a1, a2 uint64) (Action, error) {
	vm := s.vm
	if s.closed {
		return Stop, errors.New("host: stream callback after Stream.Close")
	}
	var (
		ret uint64
		err error
	)
	if ex == exRequestTrailers {
		ret, _, err = vm.call(ex, s, s.id, uint64(s.id), a1)
	} else {
		ret, _, err = vm.call(ex, s, s.id, uint64(s.id), a1, a2)
	}
	local := s.pendingLocal != nil
	vm.finishCallback()
	if err != nil {
		return Stop, err
	}
	if abi.Action(ret) != abi.ActionContinue || local {
		return Stop, nil
	}
	return Continue, nil
}

// dataStopIterationAndBuffer is the body callbacks' result 1 (FilterDataStatus): Envoy
// holds the body and hands the guest the whole buffered size next time.
const dataStopIterationAndBuffer = abi.ActionPause

// runBody reports, besides the action, whether Envoy keeps buffering the body
// (result 1, StopIterationAndBuffer, without a local response).
func (s *Stream) runBody(ex export, size int, eos bool) (Action, bool, error) {
	if s.closed {
		return Stop, false, errors.New("host: stream callback after Stream.Close")
	}
	ret, _, err := s.vm.call(ex, s, s.id, uint64(s.id), uint64(size), boolU64(eos))
	local := s.pendingLocal != nil
	s.vm.finishCallback()
	if err != nil {
		return Stop, false, err
	}
	switch {
	case local:
		return Stop, false, nil
	case abi.Action(ret) == abi.ActionContinue:
		return Continue, false, nil
	case abi.Action(ret) == dataStopIterationAndBuffer:
		return Stop, true, nil
	}
	return Stop, false, nil
}

// applyDeferred carries out what the guest asked for during the callback that just
// returned: Envoy runs local replies and stream continuations after the VM call.
func (s *Stream) applyDeferred() {
	if lr := s.pendingLocal; lr != nil {
		s.pendingLocal = nil
		if s.local.Load() == nil { // a second local reply on one stream is not sent
			s.local.Store(lr)
		}
	}
	for dir, want := range s.pendingResume {
		if want {
			s.pendingResume[dir] = false
			s.resumed[dir].Add(1)
			if dir == 0 {
				s.reqDone = true
			} else {
				s.respDone = true
			}
		}
	}
}
