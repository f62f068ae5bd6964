package wasmhost

import (
	"switchyard/internal/abi"

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
		level := abi.LogLevel(s[0])
		if level > abi.LogCritical {
			s[0] = uint64(abi.StatusBadArgument)
			return
		}
		msg, ok := vm.mem.Read(uint32(s[1]), uint32(s[2]))
		if !ok {
			s[0] = uint64(abi.StatusInvalidMemoryAccess)
			return
		}
		vm.host.log(vm, LogLevel(level), string(msg))
		s[0] = uint64(abi.StatusOK)
	})
	e("proxy_get_log_level", ps(1), r32, old|abi021Only, func(vm *VM, s []uint64) {
		s[0] = uint64(status(vm.putU32(uint32(s[0]), uint32(vm.host.LogLevel()))))
	})
	e("proxy_get_status", ps(3), r32, old, func(vm *VM, s []uint64) {
		if !vm.putU32(uint32(s[0]), uint32(vm.statusCode)) {
			s[0] = uint64(abi.StatusInvalidMemoryAccess)
			return
		}
		s[0] = uint64(vm.copyOut([]byte(vm.statusMsg), uint32(s[1]), uint32(s[2])))
	})
	e("proxy_set_property", ps(4), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.setProperty(s)) })
	e("proxy_get_property", ps(4), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.getProperty(s)) })
	e("proxy_send_local_response", ps(8), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.sendLocalResponse(s)) })
	e("proxy_get_shared_data", ps(5), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.getSharedData(s)) })
	e("proxy_set_shared_data", ps(5), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.setSharedData(s)) })
	e("proxy_register_shared_queue", ps(3), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.registerQueue(s)) })
	e("proxy_resolve_shared_queue", ps(5), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.resolveQueue(s)) })
	e("proxy_dequeue_shared_queue", ps(3), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.dequeue(s)) })
	e("proxy_enqueue_shared_queue", ps(3), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.enqueue(s)) })
	e("proxy_get_header_map_value", ps(5), r32, old, func(vm *VM, s []uint64) {
		m, st := vm.headerMap(abi.MapType(s[0]), false)
		if st != abi.StatusOK {
			s[0] = uint64(st)
			return
		}
		key, ok := vm.mem.Read(uint32(s[1]), uint32(s[2]))
		if !ok {
			s[0] = uint64(abi.StatusInvalidMemoryAccess)
			return
		}
		v, found := m.getBytes(key)
		if !found {
			s[0] = uint64(abi.StatusNotFound)
			return
		}
		s[0] = uint64(vm.copyOutString(v, uint32(s[3]), uint32(s[4])))
	})
	e("proxy_add_header_map_value", ps(5), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.editHeader(s, editAdd)) })
	e("proxy_replace_header_map_value", ps(5), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.editHeader(s, editReplace)) })
	e("proxy_remove_header_map_value", ps(3), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.editHeader(s, editRemove)) })
	e("proxy_get_header_map_pairs", ps(3), r32, old, func(vm *VM, s []uint64) {
		m, st := vm.headerMap(abi.MapType(s[0]), false)
		if st == abi.StatusBadArgument && abi.MapType(s[0]) > abi.MapHttpCallResponseTrailers {
			s[0] = uint64(st)
			return
		}
		var data []byte
		if st == abi.StatusOK { // an unavailable map reads as an empty one
			data = abi.AppendPairs(vm.scratch[:0], *m)
			vm.scratch = data[:0]
		}
		s[0] = uint64(vm.copyOut(data, uint32(s[1]), uint32(s[2])))
	})
	e("proxy_set_header_map_pairs", ps(3), r32, old, func(vm *VM, s []uint64) {
		m, st := vm.headerMap(abi.MapType(s[0]), true)
		if st != abi.StatusOK {
			s[0] = uint64(st)
			return
		}
		data, ok := vm.mem.Read(uint32(s[1]), uint32(s[2]))
		if !ok {
			s[0] = uint64(abi.StatusInvalidMemoryAccess)
			return
		}
		pairs, st := decodePairs(data)
		if st != abi.StatusOK {
			s[0] = uint64(st)
			return
		}
		*m = (*m)[:0]
		for _, kv := range pairs {
			m.add(kv[0], kv[1])
		}
		s[0] = uint64(abi.StatusOK)
	})
	e("proxy_get_header_map_size", ps(2), r32, old, func(vm *VM, s []uint64) {
		m, st := vm.headerMap(abi.MapType(s[0]), false)
		if st != abi.StatusOK {
			s[0] = uint64(st)
			return
		}
		s[0] = uint64(status(vm.putU32(uint32(s[1]), uint32(m.byteSize()))))
	})
	e("proxy_get_buffer_status", ps(3), r32, old, func(vm *VM, s []uint64) {
		b, st := vm.buffer(abi.BufferType(s[0]))
		if st != abi.StatusOK {
			s[0] = uint64(st)
			return
		}
		if !vm.putU32(uint32(s[1]), uint32(len(*b))) || !vm.putU32(uint32(s[2]), 0) {
			s[0] = uint64(abi.StatusInvalidMemoryAccess)
			return
		}
		s[0] = uint64(abi.StatusOK)
	})
	e("proxy_get_buffer_bytes", ps(5), r32, old, func(vm *VM, s []uint64) {
		b, st := vm.buffer(abi.BufferType(s[0]))
		if st != abi.StatusOK {
			s[0] = uint64(st)
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
		s[0] = uint64(vm.copyOut((*b)[start:end], uint32(s[3]), uint32(s[4])))
	})
	e("proxy_set_buffer_bytes", ps(5), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.setBufferBytes(s)) })
	e("proxy_continue_stream", ps(1), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.continueStream(uint32(s[0]), false)) })
	e("proxy_close_stream", ps(1), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.continueStream(uint32(s[0]), true)) })
	e("proxy_http_call", ps(10), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.httpCall(s)) })
	// gRPC: the wasmhost has no gRPC clusters, so every service is unknown, which Envoy
	// answers with ParseFailure; tokens never exist.
	grpcUnknown := func(vm *VM, s []uint64) {
		vm.host.log(vm, Warn, "host: proxy_grpc_* called, but the wasmhost has no gRPC clusters")
		s[0] = uint64(abi.StatusParseFailure)
	}
	e("proxy_grpc_call", ps(12), r32, old, grpcUnknown)
	e("proxy_grpc_stream", ps(9), r32, old, grpcUnknown)
	e("proxy_grpc_send", ps(4), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(abi.StatusNotFound) })
	e("proxy_grpc_cancel", ps(1), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(abi.StatusNotFound) })
	e("proxy_grpc_close", ps(1), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(abi.StatusNotFound) })
	e("proxy_set_tick_period_milliseconds", ps(1), r32, old, func(vm *VM, s []uint64) {
		vm.setTickPeriod(uint32(s[0]))
		s[0] = uint64(abi.StatusOK)
	})
	e("proxy_get_current_time_nanoseconds", ps(1), r32, old, func(vm *VM, s []uint64) {
		s[0] = uint64(status(vm.mem.WriteUint64Le(uint32(s[0]), uint64(vm.host.clock.Now().UnixNano()))))
	})
	e("proxy_define_metric", ps(4), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.defineMetric(s)) })
	e("proxy_increment_metric", []api.ValueType{i32, i64}, r32, old, func(vm *VM, s []uint64) {
		s[0] = uint64(vm.incrementMetric(uint32(s[0]), int64(s[1])))
	})
	e("proxy_record_metric", []api.ValueType{i32, i64}, r32, old, func(vm *VM, s []uint64) {
		s[0] = uint64(vm.recordMetric(uint32(s[0]), s[1]))
	})
	e("proxy_get_metric", ps(2), r32, old, func(vm *VM, s []uint64) { s[0] = uint64(vm.getMetric(uint32(s[0]), uint32(s[1]))) })
	e("proxy_set_effective_context", ps(1), r32, old, func(vm *VM, s []uint64) {
		id := uint32(s[0])
		if id == vm.rootID {
			vm.effective, vm.effStream = id, nil
			s[0] = uint64(abi.StatusOK)
			return
		}
		st, ok := vm.streams[id]
		if !ok {
			s[0] = uint64(abi.StatusBadArgument)
			return
		}
		vm.effective, vm.effStream = id, st
		s[0] = uint64(abi.StatusOK)
	})
	e("proxy_done", nil, r32, old, func(vm *VM, s []uint64) { s[0] = uint64(abi.StatusNotFound) })
	e("proxy_call_foreign_function", ps(6), r32, old, func(vm *VM, s []uint64) {
		name, ok := vm.mem.Read(uint32(s[0]), uint32(s[1]))
		if !ok {
			s[0] = uint64(abi.StatusInvalidMemoryAccess)
			return
		}
		switch string(name) {
		case "clear_route_cache":
			// Route selection is the embedder's business here; nothing is cached.
			s[0] = uint64(vm.copyOut(nil, uint32(s[4]), uint32(s[5])))
		default:
			vm.host.log(vm, Warn, "host: foreign function "+string(name)+" is not provided by the wasmhost")
			s[0] = uint64(abi.StatusNotFound)
		}
	})
	e("envoy_resolve_dns", ps(3), r32, old, func(vm *VM, s []uint64) {
		vm.host.log(vm, Warn, "host: envoy_resolve_dns is not provided by the wasmhost")
		s[0] = uint64(abi.StatusUnimplemented)
	})
	e("pthread_equal", ps(2), r32, old, func(vm *VM, s []uint64) {
		s[0] = boolU64(uint32(s[0]) == uint32(s[1]))
	})
	e("emscripten_notify_memory_growth", ps(1), nil, initBoth, func(vm *VM, s []uint64) {})
}

func status(ok bool) abi.Status {
	if ok {
		return abi.StatusOK
	}
	return abi.StatusInvalidMemoryAccess
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
func (vm *VM) copyOut(data []byte, ptrPtr, sizePtr uint32) abi.Status {
	var ptr uint32
	if len(data) > 0 {
		var ok bool
		ptr, ok = vm.alloc(uint32(len(data)))
		if !ok || !vm.mem.Write(ptr, data) {
			return abi.StatusInvalidMemoryAccess
		}
	}
	if !vm.putU32(ptrPtr, ptr) || !vm.putU32(sizePtr, uint32(len(data))) {
		return abi.StatusInvalidMemoryAccess
	}
	return abi.StatusOK
}

// copyOutString is copyOut for a string (a header value), without converting it.
func (vm *VM) copyOutString(data string, ptrPtr, sizePtr uint32) abi.Status {
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

// Host limits on a header map the guest hands over in the pairs format (cpp-host
// limits.h): more bytes or pairs than this is refused with BadArgument before anything
// is copied.
const (
	maxPairsBytes = 1 << 20
	maxPairs      = 1024
)

// decodePairs reads a header map from guest memory under the host's limits.
func decodePairs(b []byte) ([][2]string, abi.Status) {
	if len(b) > maxPairsBytes {
		return nil, abi.StatusBadArgument
	}
	pairs, err := abi.DecodePairs(b, maxPairs)
	if err != nil {
		return nil, abi.StatusBadArgument
	}
	return pairs, abi.StatusOK
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
