// Command probe is the host's test guest: a raw proxy-wasm 0.2.1 module (no SDK) whose
// behaviour each request chooses by its :path, so that one build exercises every rule
// of the host. It logs what it saw with proxy_log; the tests read the host's logs.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o probe.wasm .
package main

import (
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"switchyard/internal/abi"
)

func main() {}

//go:wasmimport env proxy_log
func proxyLog(level uint32, msg string) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(bt, start, max uint32, retPtr, retSize *uint32) uint32

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeader(mt uint32, key string, retPtr, retSize *uint32) uint32

//go:wasmimport env proxy_get_header_map_pairs
func proxyGetPairs(mt uint32, retPtr, retSize *uint32) uint32

//go:wasmimport env proxy_replace_header_map_value
func proxyReplaceHeader(mt uint32, key, value string) uint32

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(status uint32, details, body, headers string, grpc int32) uint32

//go:wasmimport env proxy_http_call
func proxyHTTPCall(upstream, headers, body, trailers string, timeoutMS uint32, token *uint32) uint32

//go:wasmimport env proxy_get_shared_data
func proxyGetShared(key string, retPtr, retSize, cas *uint32) uint32

//go:wasmimport env proxy_set_shared_data
func proxySetShared(key, value string, cas uint32) uint32

//go:wasmimport env proxy_set_tick_period_milliseconds
func proxySetTick(ms uint32) uint32

//go:wasmimport env proxy_define_metric
func proxyDefineMetric(typ uint32, name string, id *uint32) uint32

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(id uint32, offset int64) uint32

//go:wasmimport env proxy_get_property
func proxyGetProperty(path string, retPtr, retSize *uint32) uint32

//go:wasmimport env proxy_get_status
func proxyGetStatus(code, retPtr, retSize *uint32) uint32

//go:wasmimport env proxy_get_log_level
func proxyGetLogLevel(level *uint32) uint32

// Out-parameters are globals: they never move when the re-entrant allocator grows the
// goroutine stack (docs/proxy-wasm-host.md, Limits and host mechanics).
var outPtr, outSize, outAux uint32

// pending roots every buffer the host asked for until the guest takes it, so a GC in
// between cannot free it.
var pending = map[uint32][]byte{}

// allocTrap makes the allocator call an import Envoy forbids there.
var allocTrap bool

//go:wasmexport proxy_on_memory_allocate
func onMemoryAllocate(size uint32) uint32 {
	if allocTrap {
		proxySetTick(1) // not allowed inside the allocator: the host must trap
	}
	b := make([]byte, size)
	p := uint32(uintptr(unsafe.Pointer(&b[0])))
	pending[p] = b
	return p
}

// take returns what the host last copied out and forgets it; "" when the last call
// copied nothing (the out-parameters are cleared after each take).
func take() string {
	defer func() { outPtr, outSize = 0, 0 }()
	b, ok := pending[outPtr]
	if !ok || outSize == 0 {
		return ""
	}
	delete(pending, outPtr)
	return string(b[:outSize])
}

func logf(parts ...string) { proxyLog(2, strings.Join(parts, " ")) }

func u(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func init() {
	proxyLog(2, "probe init") // proxy_log is allowed during _initialize
	if v, _ := syscall.Getenv("PROBE_INIT_CALL"); v == "1" {
		proxySetTick(1000) // not allowed during _initialize: the host must trap
	}
}

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

var requests uint32

//go:wasmexport proxy_on_context_create
func onContextCreate(id, parent uint32) { logf("context_create", u(id), u(parent)) }

//go:wasmexport proxy_on_vm_start
func onVMStart(root, size uint32) bool {
	proxyGetBufferBytes(6, 0, size, &outPtr, &outSize)
	logf("vm_start", u(root), "vm_config="+take())
	return true
}

func property(path string) (string, uint32) {
	st := proxyGetProperty(strings.ReplaceAll(path, ".", "\x00"), &outPtr, &outSize)
	return take(), st
}

//go:wasmexport proxy_on_configure
func onConfigure(root, size uint32) bool {
	st := proxyGetBufferBytes(7, 0, size, &outPtr, &outSize)
	cfg := take()
	rootID, _ := property("plugin_root_id")
	name, _ := property("plugin_name")
	vmID, _ := property("plugin_vm_id")
	proxyGetLogLevel(&outAux)
	logf("configure", u(root), "status="+u(st), "config="+cfg, "root_id="+rootID, "name="+name, "vm_id="+vmID, "log_level="+u(outAux))
	if st := proxyDefineMetric(0, "probe.requests", &requests); st != 0 {
		logf("define_metric failed", u(st))
	}
	if strings.Contains(cfg, "reject") {
		return false
	}
	if ms, ok := strings.CutPrefix(cfg, "tick="); ok {
		n, _ := strconv.Atoi(ms)
		proxySetTick(uint32(n))
	}
	return true
}

//go:wasmexport proxy_on_tick
func onTick(root uint32) {
	rootID, _ := property("plugin_root_id")
	vmID, _ := property("plugin_vm_id")
	logf("tick", u(root), "root_id="+rootID, "vm_id="+vmID)
}

func header(name string) (string, uint32) {
	st := proxyGetHeader(0, name, &outPtr, &outSize)
	return take(), st
}

// pairs serializes headers (key, value, key, value, ...) in the pairs format.
func pairs(kv ...string) string {
	p := make([][2]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		p = append(p, [2]string{kv[i], kv[i+1]})
	}
	return abi.EncodePairs(p)
}

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(ctx, n, eos uint32) uint32 {
	proxyIncrementMetric(requests, 1)
	raw, _ := header(":path")
	path, query, _ := strings.Cut(raw, "?")
	q, _ := url.ParseQuery(query)
	switch path {
	case "/local":
		proxySendLocalResponse(403, "denied by probe", "no", pairs("X-Probe", "1"), -1)
		// Still in the callback: Envoy has not sent the reply yet.
		st := proxyReplaceHeader(0, "x-after-local", "yes")
		logf("after local", u(st))
		return 0 // the host must stop anyway
	case "/route":
		proxyReplaceHeader(0, ":authority", "backend:8080")
		return 0
	case "/stop":
		return 1
	case "/call":
		kv := []string{":method", "GET", ":path", q.Get("path")}
		if a := q.Get("authority"); a != "" {
			kv = append(kv, ":authority", a)
		}
		timeout, _ := strconv.Atoi(q.Get("timeout"))
		var token uint32
		st := proxyHTTPCall(q.Get("cluster"), pairs(kv...), "", "", uint32(timeout), &token)
		logf("http_call", "status="+u(st), "token="+u(token))
	case "/readresp":
		st := proxyGetBufferBytes(4, 0, 100, &outPtr, &outSize)
		take()
		st2 := proxyGetHeader(6, ":status", &outPtr, &outSize)
		take()
		logf("readresp", "body_status="+u(st), "header_status="+u(st2))
	case "/shared/set":
		cas, _ := strconv.ParseUint(q.Get("cas"), 10, 32)
		st := proxySetShared(q.Get("key"), q.Get("value"), uint32(cas))
		logf("shared_set", q.Get("key"), "status="+u(st))
	case "/shared/get":
		outAux = 0
		st := proxyGetShared(q.Get("key"), &outPtr, &outSize, &outAux)
		logf("shared_get", q.Get("key"), "status="+u(st), "value="+take(), "cas="+u(outAux))
	case "/panic":
		panic("probe boom")
	case "/alloc-trap":
		allocTrap = true
		header(":path") // the host allocates for the value: the allocator traps
	case "/tick":
		ms, _ := strconv.Atoi(q.Get("ms"))
		logf("set_tick", "status="+u(proxySetTick(uint32(ms))))
	case "/timer":
		time.AfterFunc(time.Hour, func() {}) // arms the runtime's netpoller
		runtime.GC()
		logf("timer gc done")
	case "/gc":
		runtime.GC()
		logf("gc done")
	case "/metric0":
		logf("increment0", "status="+u(proxyIncrementMetric(requests, 0)))
	case "/prop":
		v, st := property(q.Get("name"))
		logf("prop", q.Get("name")+"="+v, "status="+u(st))
	}
	return 0
}

//go:wasmexport proxy_on_http_call_response
func onHTTPCallResponse(root, token, nh, nb, nt uint32) {
	st := proxyGetBufferBytes(4, 0, nb, &outPtr, &outSize)
	body := take()
	proxyGetHeader(6, ":status", &outPtr, &outSize)
	status := take()
	proxyGetStatus(&outAux, &outPtr, &outSize)
	msg := take()
	logf("http_response", "root="+u(root), "token="+u(token), "headers="+u(nh), "body_size="+u(nb),
		"status="+status, "body="+body, "body_status="+u(st), "code="+u(outAux), "msg="+msg)
}

//go:wasmexport proxy_on_log
func onLog(ctx uint32) { logf("on_log", u(ctx)) }

//go:wasmexport proxy_on_done
func onDone(ctx uint32) bool { logf("on_done", u(ctx)); return true }

//go:wasmexport proxy_on_delete
func onDelete(ctx uint32) { logf("on_delete", u(ctx)) }
