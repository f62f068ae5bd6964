package abi

import "unsafe"

// unsafeString views b as a string without copying, for reads that copy what they
// keep.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
