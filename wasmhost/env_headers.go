package wasmhost

import (
	"strings"

	"switchyard/internal/abi"
)

// Header maps: docs/proxy-wasm-host.md, Headers. Map types are abi.MapType; the pairs
// format is internal/abi's codec under the host's limits (decodePairs).

var headerImports = []*hostFunc{
	proxyGetHeaderMapValue, proxyAddHeaderMapValue, proxyReplaceHeaderMapValue,
	proxyRemoveHeaderMapValue, proxyGetHeaderMapPairs, proxySetHeaderMapPairs,
	proxyGetHeaderMapSize,
}

// proxyGetHeaderMapValue is env.proxy_get_header_map_value: the first value of a
// header (Envoy returns only the first), the key matched lower-case.
//
//	proxy_get_header_map_value(map_type, key_ptr, key_size, ret_value_ptr, ret_value_size) -> status
//
// Statuses:
//   - Ok: the value was copied out.
//   - NotFound: no such header; or the map is gone (see headerMap).
//   - BadArgument: unknown map type, or the map does not exist in this callback.
//   - InvalidMemoryAccess: key or out-parameters outside guest memory.
//
// Linked everywhere; callbacks only.
var proxyGetHeaderMapValue = &hostFunc{
	module: moduleEnv, name: "proxy_get_header_map_value",
	params: ps(5), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) {
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
	},
}

// proxyAddHeaderMapValue is env.proxy_add_header_map_value: appends a value (Envoy's
// addCopy), the key lower-cased.
//
//	proxy_add_header_map_value(map_type, key_ptr, key_size, value_ptr, value_size) -> status
//
// Statuses:
//   - Ok: added.
//   - NotFound: the map is gone (the stream is ending).
//   - BadArgument: unknown or read-only map, a map this callback does not have, or a
//     direction already continued with proxy_continue_stream.
//   - InvalidMemoryAccess: key or value outside guest memory.
//
// Linked everywhere; callbacks only.
var proxyAddHeaderMapValue = envCall("proxy_add_header_map_value", 5, func(vm *VM, s []uint64) abi.Status { return vm.editHeader(s, editAdd) })

// proxyReplaceHeaderMapValue is env.proxy_replace_header_map_value: sets a header to
// one value (Envoy's setCopy): the first entry keeps its place, later ones go, an
// absent header is added.
//
//	proxy_replace_header_map_value(map_type, key_ptr, key_size, value_ptr, value_size) -> status
//
// Statuses: as proxy_add_header_map_value.
//
// Linked everywhere; callbacks only.
var proxyReplaceHeaderMapValue = envCall("proxy_replace_header_map_value", 5, func(vm *VM, s []uint64) abi.Status { return vm.editHeader(s, editReplace) })

// proxyRemoveHeaderMapValue is env.proxy_remove_header_map_value: drops every entry of
// a header; removing an absent header is Ok.
//
//	proxy_remove_header_map_value(map_type, key_ptr, key_size) -> status
//
// Statuses: as proxy_add_header_map_value.
//
// Linked everywhere; callbacks only.
var proxyRemoveHeaderMapValue = envCall("proxy_remove_header_map_value", 3, func(vm *VM, s []uint64) abi.Status { return vm.editHeader(s, editRemove) })

// proxyGetHeaderMapPairs is env.proxy_get_header_map_pairs: the whole map in the
// pairs format. A map that does not exist now reads as an empty one, as in Envoy.
//
//	proxy_get_header_map_pairs(map_type, ret_pairs_ptr, ret_pairs_size) -> status
//
// Statuses:
//   - Ok: the map (possibly empty: (0, 0)) was copied out.
//   - BadArgument: unknown map type.
//   - InvalidMemoryAccess: out-parameters outside guest memory.
//
// Linked everywhere; callbacks only.
var proxyGetHeaderMapPairs = &hostFunc{
	module: moduleEnv, name: "proxy_get_header_map_pairs",
	params: ps(3), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) {
		mt := abi.MapType(s[0])
		if mt > abi.MapHttpCallResponseTrailers {
			s[0] = uint64(abi.StatusBadArgument)
			return
		}
		var data []byte
		if m, st := vm.headerMap(mt, false); st == abi.StatusOK {
			data = abi.AppendPairs(vm.scratch[:0], *m)
			vm.scratch = data[:0]
		}
		s[0] = uint64(vm.copyOut(data, uint32(s[1]), uint32(s[2])))
	},
}

// proxySetHeaderMapPairs is env.proxy_set_header_map_pairs: replaces the whole map
// with the given pairs (Envoy removes every key, then adds each pair), keys
// lower-cased.
//
//	proxy_set_header_map_pairs(map_type, pairs_ptr, pairs_size) -> status
//
// Statuses:
//   - Ok: replaced.
//   - NotFound: the map is gone (the stream is ending).
//   - BadArgument: unknown or read-only map, a map this callback does not have, a
//     direction already continued, or pairs malformed or over 1024 pairs / 1 MiB.
//   - InvalidMemoryAccess: pairs outside guest memory.
//
// Linked everywhere; callbacks only.
var proxySetHeaderMapPairs = &hostFunc{
	module: moduleEnv, name: "proxy_set_header_map_pairs",
	params: ps(3), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) {
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
	},
}

// proxyGetHeaderMapSize is env.proxy_get_header_map_size: what Envoy returns, the
// map's byte size (HeaderMap::byteSize, the sum of key and value lengths), not its
// number of entries.
//
//	proxy_get_header_map_size(map_type, ret_size_ptr) -> status
//
// Statuses:
//   - Ok: the size was written.
//   - NotFound / BadArgument: the map does not exist now (see headerMap).
//   - InvalidMemoryAccess: ret_size_ptr outside guest memory.
//
// Linked everywhere; callbacks only.
var proxyGetHeaderMapSize = &hostFunc{
	module: moduleEnv, name: "proxy_get_header_map_size",
	params: ps(2), results: r32, link: linkedEverywhere, allowed: callbacksOnly,
	fn: func(vm *VM, s []uint64) {
		m, st := vm.headerMap(abi.MapType(s[0]), false)
		if st != abi.StatusOK {
			s[0] = uint64(st)
			return
		}
		s[0] = uint64(status(vm.putU32(uint32(s[1]), uint32(m.byteSize()))))
	},
}

// headerMap returns header map mt of the effective context, or the status Envoy
// answers when it does not exist now: BadArgument for an unknown type, a stream map
// asked from the root context or a map this callback does not have yet; NotFound for
// the http-call answer outside its callback and for stream maps once the stream is
// ending (on_log and after). forWrite refuses the read-only http-call answer and a
// direction already continued.
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
