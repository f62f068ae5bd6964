package wasmhost

import "strings"

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
