package wasmhost

import (
	"encoding/binary"
	"net"
	"strconv"
	"strings"

	"switchyard/internal/abi"
)

// Properties: docs/proxy-wasm-host.md, Properties. Paths are NUL-separated segments;
// the plugin_* and xds.node.{id,cluster} properties exist everywhere, the request.*,
// response.code, response.flags, response.code_details, upstream.address,
// upstream.port and source.* attributes in a stream context; an unknown name falls back to what
// proxy_set_property stored; anything else is NotFound.

var propertyImports = []*hostFunc{proxyGetProperty, proxySetProperty}

// proxyGetProperty is env.proxy_get_property: an attribute of the plugin or of the
// effective stream, serialized as Envoy does (strings raw, integers 8 bytes
// little-endian).
//
//	proxy_get_property(path_ptr, path_size, ret_value_ptr, ret_value_size) -> status
//
// Statuses:
//   - Ok: the value was copied out.
//   - NotFound: no such property here (unknown, only in a stream, or one Envoy 1.33
//     removed such as the top-level "node").
//   - InvalidMemoryAccess: path or out-parameters outside guest memory.
//
// Linked everywhere; callbacks only.
var proxyGetProperty = envCall("proxy_get_property", 4, (*VM).getProperty)

// proxySetProperty is env.proxy_set_property: Envoy keeps the value as filter state of
// the effective stream (or of the root context), readable later by proxy_get_property
// of the same path.
//
//	proxy_set_property(path_ptr, path_size, value_ptr, value_size) -> status
//
// Statuses:
//   - Ok: stored.
//   - InvalidMemoryAccess: path or value outside guest memory.
//
// Linked everywhere; callbacks only.
var proxySetProperty = envCall("proxy_set_property", 4, (*VM).setProperty)

func (vm *VM) getProperty(s []uint64) abi.Status {
	raw, ok := vm.mem.Read(uint32(s[0]), uint32(s[1]))
	if !ok {
		return abi.StatusInvalidMemoryAccess
	}
	path := strings.TrimSuffix(string(raw), "\x00")
	v, found := vm.property(path)
	if !found {
		return abi.StatusNotFound
	}
	return vm.copyOut(v, uint32(s[2]), uint32(s[3]))
}

func (vm *VM) setProperty(s []uint64) abi.Status {
	path, ok1 := vm.mem.Read(uint32(s[0]), uint32(s[1]))
	val, ok2 := vm.mem.Read(uint32(s[2]), uint32(s[3]))
	if !ok1 || !ok2 {
		return abi.StatusInvalidMemoryAccess
	}
	// Envoy keeps it as filter state of the stream (or of the root for the root).
	props := &vm.rootProps
	if st := vm.effStream; st != nil {
		props = &st.props
	}
	if *props == nil {
		*props = map[string][]byte{}
	}
	(*props)[string(path)] = append([]byte(nil), val...)
	return abi.StatusOK
}

func u64le(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func (vm *VM) property(path string) ([]byte, bool) {
	switch path {
	case "plugin_name":
		return []byte(vm.pc.Name), true
	case "plugin_root_id":
		return []byte(vm.pc.RootID), true
	case "plugin_vm_id":
		return []byte(vm.pc.VMID), true
	// Envoy (>= 1.33) reads these string fields of its bootstrap node: raw bytes, Ok
	// and empty when unset (a proto3 string's default), in every context. The other
	// node fields and xds.node itself (a serialized protobuf) are not served here.
	case "xds\x00node\x00id":
		return []byte(vm.host.opts.Node.ID), true
	case "xds\x00node\x00cluster":
		return []byte(vm.host.opts.Node.Cluster), true
	}
	st := vm.effStream
	if st != nil {
		if v, ok := st.props[path]; ok {
			return v, true
		}
		if v, ok := st.attribute(path); ok {
			return v, true
		}
	}
	if v, ok := vm.rootProps[path]; ok {
		return v, true
	}
	return nil, false
}

func (s *Stream) attribute(path string) ([]byte, bool) {
	header := func(k string) ([]byte, bool) {
		if !s.haveReq {
			return nil, false
		}
		v, ok := s.req.Get(k)
		return []byte(v), ok
	}
	switch path {
	case "request\x00path":
		return header(":path")
	case "request\x00url_path":
		p, ok := header(":path")
		if i := strings.IndexByte(string(p), '?'); i >= 0 {
			p = p[:i]
		}
		return p, ok
	case "request\x00query":
		p, ok := header(":path")
		if !ok {
			return nil, false
		}
		if i := strings.IndexByte(string(p), '?'); i >= 0 {
			return p[i+1:], true
		}
		return []byte{}, true
	case "request\x00host":
		return header(":authority")
	case "request\x00scheme":
		return header(":scheme")
	case "request\x00method":
		return header(":method")
	case "request\x00useragent":
		return header("user-agent")
	case "request\x00referer":
		return header("referer")
	case "request\x00id":
		if s.attrs.RequestID != "" {
			return []byte(s.attrs.RequestID), true
		}
		return header("x-request-id")
	case "request\x00protocol":
		return []byte("HTTP/1.1"), s.haveReq
	case "response\x00code":
		if !s.haveResp {
			return nil, false
		}
		v, ok := s.resp.Get(":status")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			return nil, false
		}
		return u64le(uint64(n)), true
	case "response\x00flags":
		// Envoy serves the flags at any point of the stream, 0 until one is set.
		return u64le(s.upstream.Flags), true
	case "response\x00code_details":
		if s.upstream.CodeDetails == "" {
			return nil, false
		}
		return []byte(s.upstream.CodeDetails), true
	case "upstream\x00address":
		if s.upstream.Address == "" {
			return nil, false
		}
		return []byte(s.upstream.Address), true
	case "upstream\x00port":
		return portOf(s.upstream.Address)
	case "source\x00address":
		if s.attrs.SourceAddress == "" {
			return nil, false
		}
		return []byte(s.attrs.SourceAddress), true
	case "source\x00port":
		return portOf(s.attrs.SourceAddress)
	}
	return nil, false
}

// portOf is the port of an "ip:port" address as Envoy serializes an integer.
func portOf(address string) ([]byte, bool) {
	_, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, false
	}
	n, err := strconv.ParseUint(port, 10, 64)
	if err != nil {
		return nil, false
	}
	return u64le(n), true
}
