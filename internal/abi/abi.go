// Package abi is the proxy-wasm ABI v0.2.1 vocabulary shared by the filter (compiled
// for wasip1), the wasmhost and test guests: the statuses the env.proxy_* imports
// return, the map, buffer and log-level numbers, and the header-pairs wire format.
// It is pure Go with no dependencies, allocates nothing on the read path, and arms no
// timer, so the filter may import it.
//
// The numbers are those of the proxy-wasm spec, abi-versions/v0.2.1.
package abi

import "strconv"

// Status is a proxy-wasm WasmResult, the u32 every env.proxy_* import returns.
type Status uint32

const (
	StatusOK                  Status = 0
	StatusNotFound            Status = 1
	StatusBadArgument         Status = 2
	StatusSerializationFailed Status = 3
	StatusParseFailure        Status = 4
	StatusInvalidMemoryAccess Status = 6
	StatusEmpty               Status = 7
	StatusCasMismatch         Status = 8
	StatusInternalFailure     Status = 10
	StatusBrokenConnection    Status = 11
	StatusUnimplemented       Status = 12
)

var statusNames = map[Status]string{
	StatusOK: "Ok", StatusNotFound: "NotFound", StatusBadArgument: "BadArgument",
	StatusSerializationFailed: "SerializationFailure", StatusParseFailure: "ParseFailure",
	StatusInvalidMemoryAccess: "InvalidMemoryAccess", StatusEmpty: "Empty",
	StatusCasMismatch: "CasMismatch", StatusInternalFailure: "InternalFailure",
	StatusBrokenConnection: "BrokenConnection", StatusUnimplemented: "Unimplemented",
}

// String is the status's name in the spec ("CasMismatch"), or its number.
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "Status(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// MapType selects a header map in proxy_{get,set,add,replace,remove}_header_map_*.
type MapType uint32

const (
	MapRequestHeaders             MapType = 0
	MapRequestTrailers            MapType = 1
	MapResponseHeaders            MapType = 2
	MapResponseTrailers           MapType = 3
	MapGrpcReceiveInitialMetadata MapType = 4
	MapGrpcReceiveTrailing        MapType = 5
	MapHttpCallResponseHeaders    MapType = 6
	MapHttpCallResponseTrailers   MapType = 7
)

// BufferType selects a buffer in proxy_get_buffer_bytes / proxy_set_buffer_bytes.
type BufferType uint32

const (
	BufferHttpRequestBody      BufferType = 0
	BufferHttpResponseBody     BufferType = 1
	BufferDownstreamData       BufferType = 2
	BufferUpstreamData         BufferType = 3
	BufferHttpCallResponseBody BufferType = 4
	BufferGrpcReceive          BufferType = 5
	BufferVmConfiguration      BufferType = 6
	BufferPluginConfiguration  BufferType = 7
	BufferCallData             BufferType = 8
)

// Action is what proxy_on_request_headers and its siblings return.
type Action uint32

const (
	ActionContinue Action = 0
	ActionPause    Action = 1
)

// LogLevel is the level of proxy_log and proxy_get_log_level.
type LogLevel uint32

const (
	LogTrace    LogLevel = 0
	LogDebug    LogLevel = 1
	LogInfo     LogLevel = 2
	LogWarn     LogLevel = 3
	LogError    LogLevel = 4
	LogCritical LogLevel = 5
)

var logLevelNames = [...]string{"trace", "debug", "info", "warn", "error", "critical"}

// String is the level's lower-case name ("warn"), or its number.
func (l LogLevel) String() string {
	if int(l) < len(logLevelNames) {
		return logLevelNames[l]
	}
	return "LogLevel(" + strconv.FormatUint(uint64(l), 10) + ")"
}

// MetricType is the kind given to proxy_define_metric.
type MetricType uint32

const (
	MetricCounter   MetricType = 0
	MetricGauge     MetricType = 1
	MetricHistogram MetricType = 2
)
