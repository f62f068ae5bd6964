package wasmhost

import (
	"encoding/binary"
	"strings"
	"unsafe"

	"github.com/tetratelabs/wazero/api"
)

// The env.proxy_* imports of ABI 0.2.x with Envoy's semantics
// (proxy-wasm-host-reference.md §1.1 and §3). Every i32 argument is truncated to 32
// bits before use: wazero does not clear the upper half of a stack slot (P5).

func (h *Host) defineEnv() {
	e := func(name string, params, results []api.ValueType, flags int, fn func(vm *VM, s []uint64)) {
		h.def("env", name, params, results, flags, fn)
	}
	e("proxy_log", ps(3), r32, everyWhen, func(vm *VM, s []uint64) {
		level := uint32(s[0])
		if level > uint32(Critical) {
			s[0] = statusBadArgument
			return
		}
		msg, ok := vm.mem.Read(uint32(s[1]), uint32(s[2]))
		if !ok {
			s[0] = statusInvalidMemoryAccess
			return
		}
		vm.host.log(vm, LogLevel(level), string(msg))
		s[0] = statusOK
	})
	e("proxy_get_log_level", ps(1), r32, old|abi021Only, func(vm *VM, s []uint64) {
		s[0] = status(vm.putU32(uint32(s[0]), uint32(vm.host.LogLevel())))
	})
	e("proxy_get_status", ps(3), r32, old, func(vm *VM, s []uint64) {
		if !vm.putU32(uint32(s[0]), vm.statusCode) {
			s[0] = statusInvalidMemoryAccess
			return
		}
		s[0] = vm.copyOut([]byte(vm.statusMsg), uint32(s[1]), uint32(s[2]))
	})
	e("proxy_set_property", ps(4), r32, old, func(vm *VM, s []uint64) { s[0] = vm.setProperty(s) })
	e("proxy_get_property", ps(4), r32, old, func(vm *VM, s []uint64) { s[0] = vm.getProperty(s) })
	e("proxy_send_local_response", ps(8), r32, old, func(vm *VM, s []uint64) { s[0] = vm.sendLocalResponse(s) })
	e("proxy_get_shared_data", ps(5), r32, old, func(vm *VM, s []uint64) { s[0] = vm.getSharedData(s) })
	e("proxy_set_shared_data", ps(5), r32, old, func(vm *VM, s []uint64) { s[0] = vm.setSharedData(s) })
	e("proxy_register_shared_queue", ps(3), r32, old, func(vm *VM, s []uint64) { s[0] = vm.registerQueue(s) })
	e("proxy_resolve_shared_queue", ps(5), r32, old, func(vm *VM, s []uint64) { s[0] = vm.resolveQueue(s) })
	e("proxy_dequeue_shared_queue", ps(3), r32, old, func(vm *VM, s []uint64) { s[0] = vm.dequeue(s) })
	e("proxy_enqueue_shared_queue", ps(3), r32, old, func(vm *VM, s []uint64) { s[0] = vm.enqueue(s) })
	e("proxy_get_header_map_value", ps(5), r32, old, func(vm *VM, s []uint64) {
		m, st := vm.headerMap(uint32(s[0]), false)
		if st != statusOK {
			s[0] = st
			return
		}
		key, ok := vm.mem.Read(uint32(s[1]), uint32(s[2]))
		if !ok {
			s[0] = statusInvalidMemoryAccess
			return
		}
		v, found := m.getBytes(key)
		if !found {
			s[0] = statusNotFound
			return
		}
		s[0] = vm.copyOutString(v, uint32(s[3]), uint32(s[4]))
	})
	e("proxy_add_header_map_value", ps(5), r32, old, func(vm *VM, s []uint64) { s[0] = vm.editHeader(s, editAdd) })
	e("proxy_replace_header_map_value", ps(5), r32, old, func(vm *VM, s []uint64) { s[0] = vm.editHeader(s, editReplace) })
	e("proxy_remove_header_map_value", ps(3), r32, old, func(vm *VM, s []uint64) { s[0] = vm.editHeader(s, editRemove) })
	e("proxy_get_header_map_pairs", ps(3), r32, old, func(vm *VM, s []uint64) {
		m, st := vm.headerMap(uint32(s[0]), false)
		if st == statusBadArgument && uint32(s[0]) > 7 {
			s[0] = st
			return
		}
		var data []byte
		if st == statusOK { // an unavailable map reads as an empty one
			data = m.appendPairs(vm.scratch[:0])
			vm.scratch = data[:0]
		}
		s[0] = vm.copyOut(data, uint32(s[1]), uint32(s[2]))
	})
	e("proxy_set_header_map_pairs", ps(3), r32, old, func(vm *VM, s []uint64) {
		m, st := vm.headerMap(uint32(s[0]), true)
		if st != statusOK {
			s[0] = st
			return
		}
		data, ok := vm.mem.Read(uint32(s[1]), uint32(s[2]))
		if !ok {
			s[0] = statusInvalidMemoryAccess
			return
		}
		pairs, ok := parsePairs(data)
		if !ok {
			s[0] = statusBadArgument
			return
		}
		*m = (*m)[:0]
		for _, kv := range pairs {
			m.add(kv[0], kv[1])
		}
		s[0] = statusOK
	})
	e("proxy_get_header_map_size", ps(2), r32, old, func(vm *VM, s []uint64) {
		m, st := vm.headerMap(uint32(s[0]), false)
		if st != statusOK {
			s[0] = st
			return
		}
		s[0] = status(vm.putU32(uint32(s[1]), uint32(m.byteSize())))
	})
	e("proxy_get_buffer_status", ps(3), r32, old, func(vm *VM, s []uint64) {
		b, st := vm.buffer(uint32(s[0]))
		if st != statusOK {
			s[0] = st
			return
		}
		if !vm.putU32(uint32(s[1]), uint32(len(*b))) || !vm.putU32(uint32(s[2]), 0) {
			s[0] = statusInvalidMemoryAccess
			return
		}
		s[0] = statusOK
	})
	e("proxy_get_buffer_bytes", ps(5), r32, old, func(vm *VM, s []uint64) {
		b, st := vm.buffer(uint32(s[0]))
		if st != statusOK {
			s[0] = st
			return
		}
		start, max := uint64(uint32(s[1])), uint64(uint32(s[2]))
		n := uint64(len(*b))
		if start > n {
			start = n
		}
		end := start + max
		if end > n {
			end = n
		}
		s[0] = vm.copyOut((*b)[start:end], uint32(s[3]), uint32(s[4]))
	})
	e("proxy_set_buffer_bytes", ps(5), r32, old, func(vm *VM, s []uint64) { s[0] = vm.setBufferBytes(s) })
	e("proxy_continue_stream", ps(1), r32, old, func(vm *VM, s []uint64) { s[0] = vm.continueStream(uint32(s[0]), false) })
	e("proxy_close_stream", ps(1), r32, old, func(vm *VM, s []uint64) { s[0] = vm.continueStream(uint32(s[0]), true) })
	e("proxy_http_call", ps(10), r32, old, func(vm *VM, s []uint64) { s[0] = vm.httpCall(s) })
	// gRPC: the wasmhost has no gRPC clusters, so every service is unknown, which Envoy
	// answers with ParseFailure; tokens never exist.
	grpcUnknown := func(vm *VM, s []uint64) {
		vm.host.log(vm, Warn, "host: proxy_grpc_* called, but the wasmhost has no gRPC clusters")
		s[0] = statusParseFailure
	}
	e("proxy_grpc_call", ps(12), r32, old, grpcUnknown)
	e("proxy_grpc_stream", ps(9), r32, old, grpcUnknown)
	e("proxy_grpc_send", ps(4), r32, old, func(vm *VM, s []uint64) { s[0] = statusNotFound })
	e("proxy_grpc_cancel", ps(1), r32, old, func(vm *VM, s []uint64) { s[0] = statusNotFound })
	e("proxy_grpc_close", ps(1), r32, old, func(vm *VM, s []uint64) { s[0] = statusNotFound })
	e("proxy_set_tick_period_milliseconds", ps(1), r32, old, func(vm *VM, s []uint64) {
		vm.setTickPeriod(uint32(s[0]))
		s[0] = statusOK
	})
	e("proxy_get_current_time_nanoseconds", ps(1), r32, old, func(vm *VM, s []uint64) {
		s[0] = status(vm.mem.WriteUint64Le(uint32(s[0]), uint64(vm.host.clock.Now().UnixNano())))
	})
	e("proxy_define_metric", ps(4), r32, old, func(vm *VM, s []uint64) { s[0] = vm.defineMetric(s) })
	e("proxy_increment_metric", []api.ValueType{i32, i64}, r32, old, func(vm *VM, s []uint64) {
		s[0] = vm.incrementMetric(uint32(s[0]), int64(s[1]))
	})
	e("proxy_record_metric", []api.ValueType{i32, i64}, r32, old, func(vm *VM, s []uint64) {
		s[0] = vm.recordMetric(uint32(s[0]), s[1])
	})
	e("proxy_get_metric", ps(2), r32, old, func(vm *VM, s []uint64) { s[0] = vm.getMetric(uint32(s[0]), uint32(s[1])) })
	e("proxy_set_effective_context", ps(1), r32, old, func(vm *VM, s []uint64) {
		id := uint32(s[0])
		if id == vm.rootID {
			vm.effective, vm.effStream = id, nil
			s[0] = statusOK
			return
		}
		st, ok := vm.streams[id]
		if !ok {
			s[0] = statusBadArgument
			return
		}
		vm.effective, vm.effStream = id, st
		s[0] = statusOK
	})
	e("proxy_done", nil, r32, old, func(vm *VM, s []uint64) { s[0] = statusNotFound })
	e("proxy_call_foreign_function", ps(6), r32, old, func(vm *VM, s []uint64) {
		name, ok := vm.mem.Read(uint32(s[0]), uint32(s[1]))
		if !ok {
			s[0] = statusInvalidMemoryAccess
			return
		}
		switch string(name) {
		case "clear_route_cache":
			// Route selection is the embedder's business here; nothing is cached.
			s[0] = vm.copyOut(nil, uint32(s[4]), uint32(s[5]))
		default:
			vm.host.log(vm, Warn, "host: foreign function "+string(name)+" is not provided by the wasmhost")
			s[0] = statusNotFound
		}
	})
	e("envoy_resolve_dns", ps(3), r32, old, func(vm *VM, s []uint64) {
		vm.host.log(vm, Warn, "host: envoy_resolve_dns is not provided by the wasmhost")
		s[0] = statusUnimplemented
	})
	e("pthread_equal", ps(2), r32, old, func(vm *VM, s []uint64) {
		s[0] = boolU64(uint32(s[0]) == uint32(s[1]))
	})
	e("emscripten_notify_memory_growth", ps(1), nil, initBoth, func(vm *VM, s []uint64) {})
}

func status(ok bool) uint64 {
	if ok {
		return statusOK
	}
	return statusInvalidMemoryAccess
}

func boolU64(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func itoa(n int64) string {
	var b [24]byte
	i := len(b)
	neg := n < 0
	u := uint64(n)
	if neg {
		u = uint64(-n)
	}
	for {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// putU32 writes v at ptr in the guest's memory, reporting whether ptr was in bounds.
func (vm *VM) putU32(ptr, v uint32) bool { return vm.mem.WriteUint32Le(ptr, v) }

// copyOut hands data to the guest as cpp-host does: one call of the guest's allocator
// for the whole value (never two per hostcall: P4), then the pointer and size written
// to the out-parameters. Empty data allocates nothing and writes (0, 0).
func (vm *VM) copyOut(data []byte, ptrPtr, sizePtr uint32) uint64 {
	var ptr uint32
	if len(data) > 0 {
		var ok bool
		ptr, ok = vm.alloc(uint32(len(data)))
		if !ok || !vm.mem.Write(ptr, data) {
			return statusInvalidMemoryAccess
		}
	}
	if !vm.putU32(ptrPtr, ptr) || !vm.putU32(sizePtr, uint32(len(data))) {
		return statusInvalidMemoryAccess
	}
	return statusOK
}

// copyOutString is copyOut for a string (a header value), without converting it.
func (vm *VM) copyOutString(data string, ptrPtr, sizePtr uint32) uint64 {
	return vm.copyOut(unsafe.Slice(unsafe.StringData(data), len(data)), ptrPtr, sizePtr)
}

// alloc calls the guest's allocator inside the allocator window, through its own
// cached function and stack (the outer call's stack is in use: P9). A trap inside the
// allocator is re-raised so that the outer guest call fails and the VM dies.
func (vm *VM) alloc(size uint32) (uint32, bool) {
	prev := vm.window
	vm.window = windowAlloc
	vm.allocStack[0] = uint64(size)
	err := vm.allocFn.CallWithStack(vm.ctx, vm.allocStack[:])
	vm.window = prev
	if err != nil {
		panic(err)
	}
	ptr := uint32(vm.allocStack[0])
	return ptr, ptr != 0
}

// Serialized maps (pairs): u32 count, count×(u32 key_len, u32 val_len), then each key
// and value followed by a NUL. Host limits from cpp-host limits.h.
const (
	maxPairsBytes = 1 << 20
	maxPairs      = 1024
)

func parsePairs(b []byte) ([][2]string, bool) {
	if len(b) == 0 || (len(b) == 1 && b[0] == 0) {
		return nil, true
	}
	if len(b) < 4 || len(b) > maxPairsBytes {
		return nil, false
	}
	n := binary.LittleEndian.Uint32(b)
	if n > maxPairs || uint64(len(b)) < 4+8*uint64(n) {
		return nil, false
	}
	out := make([][2]string, 0, n)
	data := b[4+8*n:]
	for i := uint32(0); i < n; i++ {
		kl := uint64(binary.LittleEndian.Uint32(b[4+8*i:]))
		vl := uint64(binary.LittleEndian.Uint32(b[8+8*i:]))
		if uint64(len(data)) < kl+1+vl+1 || data[kl] != 0 || data[kl+1+vl] != 0 {
			return nil, false
		}
		out = append(out, [2]string{string(data[:kl]), string(data[kl+1 : kl+1+vl])})
		data = data[kl+1+vl+1:]
	}
	return out, true
}

// appendPairs serializes h in the pairs format; an empty map is zero bytes.
func (h Headers) appendPairs(dst []byte) []byte {
	if len(h) == 0 {
		return dst
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(h)))
	for _, kv := range h {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(kv[0])))
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(kv[1])))
	}
	for _, kv := range h {
		dst = append(dst, kv[0]...)
		dst = append(dst, 0)
		dst = append(dst, kv[1]...)
		dst = append(dst, 0)
	}
	return dst
}

// lower is strings.ToLower(string(b)) for a header name read from guest memory. The
// names filters set most often come back as constants: converting them allocated once
// per edit on every request.
func lower(b []byte) string {
	switch string(b) { // no conversion: the compiler compares the bytes in place
	case ":authority":
		return ":authority"
	case ":path":
		return ":path"
	case ":method":
		return ":method"
	case ":scheme":
		return ":scheme"
	case ":status":
		return ":status"
	case "x-forwarded-host":
		return "x-forwarded-host"
	case "x-forwarded-for":
		return "x-forwarded-for"
	case "x-forwarded-proto":
		return "x-forwarded-proto"
	case "x-request-id":
		return "x-request-id"
	case "content-type":
		return "content-type"
	case "content-length":
		return "content-length"
	case "cache-control":
		return "cache-control"
	case "location":
		return "location"
	case "retry-after":
		return "retry-after"
	}
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			return strings.ToLower(string(b))
		}
	}
	return string(b)
}
