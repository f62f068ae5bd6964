//go:build wasm

package main

// The few proxy-wasm host calls the SDK does not offer (or offers only in a form that
// loses information), declared here against ABI 0.2.1 as Envoy links them.
// Out-parameters are package globals: the host writes into them while the call is
// in progress, and a global never moves (go-wasm-notes.md P3).

//go:wasmimport env proxy_get_current_time_nanoseconds
func proxyGetCurrentTimeNanoseconds(ret *uint64) uint32

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponse(status uint32, details, body, headers string, grpcStatus int32) uint32

//go:wasmimport env proxy_record_metric
func proxyRecordMetric(id uint32, value uint64) uint32

var nowOut uint64

// nowNanos is the host's clock (Envoy's dispatcher time; the e2e host's driven clock).
// Every due time in the sync is a comparison against it, never a Go timer.
func nowNanos() int64 {
	if proxyGetCurrentTimeNanoseconds(&nowOut) != 0 {
		return 0
	}
	return int64(nowOut)
}

// sendLocalResponse answers the stream with details (Envoy's response code
// details, shown in access logs), which the SDK's SendHttpResponse leaves empty.
// headers is in proxy-wasm pairs format (see serializePairs).
func sendLocalResponse(status uint32, details, body, headers string) uint32 {
	return proxySendLocalResponse(status, details, body, headers, -1)
}

// recordMetric sets a gauge (or adds to a counter) by id; the SDK can only add to a
// gauge, which is wrong after another VM has set it.
func recordMetric(id uint32, value uint64) uint32 {
	return proxyRecordMetric(id, value)
}
