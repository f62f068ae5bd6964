package wasmhost

import (
	"switchyard/internal/abi"

	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

// Headers is an ordered list of (key, value) pairs, as Envoy's header maps are. The
// host lower-cases keys on the way in; pseudo-headers (":path", ":authority",
// ":method", ":scheme", ":status") are ordinary entries.
type Headers [][2]string

// Get returns the first value of key (matched case-insensitively), as
// proxy_get_header_map_value does.
func (h Headers) Get(key string) (string, bool) {
	for _, kv := range h {
		if strings.EqualFold(kv[0], key) {
			return kv[1], true
		}
	}
	return "", false
}

// getBytes is Get for a key read from guest memory, without copying the key.
func (h Headers) getBytes(key []byte) (string, bool) {
	for _, kv := range h {
		if equalFoldBytes(kv[0], key) {
			return kv[1], true
		}
	}
	return "", false
}

// equalFoldBytes is strings.EqualFold(s, string(b)) for ASCII, which header names
// are, with no conversion.
func equalFoldBytes(s string, b []byte) bool {
	if len(s) != len(b) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c, d := s[i], b[i]
		if c == d {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

func (h *Headers) add(key, value string) { *h = append(*h, [2]string{strings.ToLower(key), value}) }

// replace sets key to the single value: the first entry keeps its place, the others go
// (Envoy setCopy).
func (h *Headers) replace(key, value string) {
	key = strings.ToLower(key)
	out := (*h)[:0]
	done := false
	for _, kv := range *h {
		if kv[0] == key {
			if done {
				continue
			}
			kv[1], done = value, true
		}
		out = append(out, kv)
	}
	if !done {
		out = append(out, [2]string{key, value})
	}
	*h = out
}

func (h *Headers) remove(key string) {
	key = strings.ToLower(key)
	out := (*h)[:0]
	for _, kv := range *h {
		if kv[0] != key {
			out = append(out, kv)
		}
	}
	*h = out
}

// byteSize is what Envoy's proxy_get_header_map_size reports: HeaderMap::byteSize(),
// the sum of key and value lengths, not the entry count.
func (h Headers) byteSize() int {
	n := 0
	for _, kv := range h {
		n += len(kv[0]) + len(kv[1])
	}
	return n
}

func lowerCopy(in Headers) Headers {
	out := make(Headers, len(in))
	for i, kv := range in {
		out[i] = [2]string{strings.ToLower(kv[0]), kv[1]}
	}
	return out
}

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
	return s.run(exRequestHeaders, uint64(len(s.req)), boolU64(endOfStream), headersAction)
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
	return s.run(exRequestTrailers, uint64(len(s.reqTrailers)), 0, trailersAction)
}

// ResponseHeaders runs proxy_on_response_headers with h as the response header map.
func (s *Stream) ResponseHeaders(h Headers, endOfStream bool) (Action, error) {
	vm := s.vm
	vm.mu.Lock()
	defer vm.mu.Unlock()
	s.resp, s.haveResp = lowerCopy(h), true
	return s.run(exResponseHeaders, uint64(len(s.resp)), boolU64(endOfStream), headersAction)
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

// How Envoy turns a callback's result into what it does next (CPH
// convertVmCallResultTo*): any non-zero result, or a local response sent during the
// callback, stops the stream.
type actionRule int

const (
	headersAction actionRule = iota
	trailersAction
)

func (s *Stream) run(ex export, a1, a2 uint64, _ actionRule) (Action, error) {
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

// The map and buffer lookups of the env imports, by the effective context.

func (vm *VM) headerMap(mt abi.MapType, forWrite bool) (*Headers, abi.Status) {
	switch mt {
	case abi.MapHttpCallResponseHeaders, abi.MapHttpCallResponseTrailers:
		if vm.httpResp == nil {
			return nil, abi.StatusNotFound
		}
		if forWrite {
			return nil, abi.StatusBadArgument
		}
		if mt == abi.MapHttpCallResponseHeaders {
			return &vm.httpResp.headers, abi.StatusOK
		}
		return &vm.httpResp.trailers, abi.StatusOK
	case abi.MapRequestHeaders, abi.MapRequestTrailers, abi.MapResponseHeaders, abi.MapResponseTrailers:
	default:
		return nil, abi.StatusBadArgument
	}
	s := vm.effStream
	if s == nil {
		return nil, abi.StatusBadArgument
	}
	var (
		m    *Headers
		have bool
		done bool
	)
	switch mt {
	case abi.MapRequestHeaders:
		m, have, done = &s.req, s.haveReq, s.reqDone
	case abi.MapRequestTrailers:
		m, have, done = &s.reqTrailers, s.haveReqTrailers, s.reqDone
	case abi.MapResponseHeaders:
		m, have, done = &s.resp, s.haveResp, s.respDone
	case abi.MapResponseTrailers:
		m, have, done = &s.respTrailers, s.haveRespTrailers, s.respDone
	}
	if !have {
		if s.ending {
			return nil, abi.StatusNotFound
		}
		return nil, abi.StatusBadArgument
	}
	if forWrite && (done || s.ending) {
		return nil, abi.StatusBadArgument
	}
	return m, abi.StatusOK
}

type headerEdit int

const (
	editAdd headerEdit = iota
	editReplace
	editRemove
)

func (vm *VM) editHeader(s []uint64, op headerEdit) abi.Status {
	m, st := vm.headerMap(abi.MapType(s[0]), true)
	if st != abi.StatusOK {
		return st
	}
	key, ok := vm.mem.Read(uint32(s[1]), uint32(s[2]))
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	var val []byte
	if op != editRemove {
		if val, ok = vm.mem.Read(uint32(s[3]), uint32(s[4])); !ok {
			return abi.StatusInvalidMemoryAccess
		}
	}
	// A key the map already holds is reused, so the common edit (replace an existing
	// header) copies only the value. Keys in the map are lower-case.
	k, found := "", false
	for _, kv := range *m {
		if equalFoldBytes(kv[0], key) {
			k, found = kv[0], true
			break
		}
	}
	switch {
	case op == editRemove && !found:
		return abi.StatusOK
	case !found:
		k = lower(key)
	}
	switch op {
	case editRemove:
		m.remove(k)
	case editAdd:
		m.add(k, string(val))
	default:
		m.replace(k, string(val))
	}
	return abi.StatusOK
}

// buffer returns the buffer of type bt for the effective context.
func (vm *VM) buffer(bt abi.BufferType) (*[]byte, abi.Status) {
	switch bt {
	case abi.BufferHttpRequestBody, abi.BufferHttpResponseBody:
		s := vm.effStream
		if s == nil {
			return nil, abi.StatusNotFound
		}
		if bt == abi.BufferHttpRequestBody && s.haveReqBody {
			return &s.reqBody, abi.StatusOK
		}
		if bt == abi.BufferHttpResponseBody && s.haveRespBody {
			return &s.respBody, abi.StatusOK
		}
		return nil, abi.StatusNotFound
	case abi.BufferHttpCallResponseBody:
		if vm.httpResp == nil {
			return nil, abi.StatusNotFound
		}
		return &vm.httpResp.body, abi.StatusOK
	case abi.BufferVmConfiguration:
		return &vm.vmConfig, abi.StatusOK
	case abi.BufferPluginConfiguration:
		// Envoy hands the plugin configuration out only while on_configure runs.
		if !vm.configuring {
			return nil, abi.StatusNotFound
		}
		return &vm.pluginConfig, abi.StatusOK
	case abi.BufferDownstreamData, abi.BufferUpstreamData, abi.BufferGrpcReceive, abi.BufferCallData:
		return nil, abi.StatusNotFound
	}
	return nil, abi.StatusBadArgument
}

func (vm *VM) setBufferBytes(s []uint64) abi.Status {
	bt := abi.BufferType(s[0])
	if bt != abi.BufferHttpRequestBody && bt != abi.BufferHttpResponseBody {
		if _, st := vm.buffer(bt); st != abi.StatusOK {
			return st
		}
		return abi.StatusBadArgument // immutable here
	}
	b, st := vm.buffer(bt)
	if st != abi.StatusOK {
		return st
	}
	data, ok := vm.mem.Read(uint32(s[3]), uint32(s[4]))
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	start, size := uint64(uint32(s[1])), uint64(uint32(s[2]))
	n := uint64(len(*b))
	switch {
	case start == 0: // drain size bytes, then prepend
		if size > n {
			size = n
		}
		*b = append(append([]byte(nil), data...), (*b)[size:]...)
	case start >= n:
		*b = append(*b, data...)
	default:
		return abi.StatusBadArgument
	}
	return abi.StatusOK
}

func (vm *VM) continueStream(st uint32, closeIt bool) abi.Status {
	s := vm.effStream
	switch {
	case st == 3:
		return abi.StatusUnimplemented
	case st > 3:
		return abi.StatusBadArgument
	case s == nil || st == 2:
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
