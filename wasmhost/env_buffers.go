package wasmhost

import "switchyard/internal/abi"

// Buffers: docs/proxy-wasm-host.md, Buffers. Buffer types are abi.BufferType.

var bufferImports = []*hostFunc{proxyGetBufferStatus, proxyGetBufferBytes, proxySetBufferBytes}

// proxyGetBufferStatus is env.proxy_get_buffer_status: a buffer's length; the flags
// are always 0, as in Envoy.
//
//	proxy_get_buffer_status(buffer_type, ret_length_ptr, ret_flags_ptr) -> status
//
// Statuses:
//   - Ok: length and flags were written.
//   - NotFound: the buffer does not exist now (see buffer).
//   - BadArgument: unknown buffer type.
//   - InvalidMemoryAccess: out-parameters outside guest memory.
//
// Linked everywhere; callbacks only.
var proxyGetBufferStatus = &hostFunc{
	module: moduleEnv, name: "proxy_get_buffer_status",
	params: ps(3), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) {
		b, st := vm.buffer(abi.BufferType(s[0]))
		if st != abi.StatusOK {
			s[0] = uint64(st)
			return
		}
		s[0] = uint64(status(vm.putU32(uint32(s[1]), uint32(len(*b))) && vm.putU32(uint32(s[2]), 0)))
	},
}

// proxyGetBufferBytes is env.proxy_get_buffer_bytes: up to max bytes from start,
// clamped to the buffer (a start past the end gives nothing, Ok).
//
//	proxy_get_buffer_bytes(buffer_type, start, max_size, ret_ptr, ret_size) -> status
//
// Statuses:
//   - Ok: the bytes (possibly none: (0, 0)) were copied out.
//   - NotFound: the buffer does not exist now; the plugin configuration (7) exists
//     only during on_configure.
//   - BadArgument: unknown buffer type.
//   - InvalidMemoryAccess: out-parameters outside guest memory.
//
// Linked everywhere; callbacks only.
var proxyGetBufferBytes = &hostFunc{
	module: moduleEnv, name: "proxy_get_buffer_bytes",
	params: ps(5), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) {
		b, st := vm.buffer(abi.BufferType(s[0]))
		if st != abi.StatusOK {
			s[0] = uint64(st)
			return
		}
		start, max := uint64(uint32(s[1])), uint64(uint32(s[2]))
		n := uint64(len(*b))
		start = min(start, n)
		end := min(start+max, n)
		s[0] = uint64(vm.copyOut((*b)[start:end], uint32(s[3]), uint32(s[4])))
	},
}

// proxySetBufferBytes is env.proxy_set_buffer_bytes with Envoy's rule: start 0 drains
// size bytes then prepends data (so (0, 0) prepends and (0, len) replaces); a start at
// or past the end appends. Only the request and response bodies are mutable.
//
//	proxy_set_buffer_bytes(buffer_type, start, size, data_ptr, data_size) -> status
//
// Statuses:
//   - Ok: the body was changed.
//   - NotFound: the body does not exist now.
//   - BadArgument: unknown or immutable buffer, or a start inside the body.
//   - InvalidMemoryAccess: data outside guest memory.
//
// Linked everywhere; callbacks only.
var proxySetBufferBytes = envCall("proxy_set_buffer_bytes", 5, (*VM).setBufferBytes)

// buffer returns buffer bt of the effective context, or the status Envoy answers when
// it does not exist now: NotFound for a buffer this callback does not have (a body
// before its callback, the http-call answer outside its callback, the plugin
// configuration outside on_configure, and the types the host never has), BadArgument
// for an unknown type.
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

// setBufferBytes applies Envoy's rule for proxy_set_buffer_bytes (see its doc).
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
