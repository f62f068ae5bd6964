package abi

import (
	"encoding/binary"
	"errors"
)

// The header-pairs format, in which proxy_get_header_map_pairs hands a whole header
// map to the guest and proxy_set_header_map_pairs / proxy_send_local_response take one
// from it: a little-endian u32 count n, then n pairs of (u32 key length, u32 value
// length), then each key and each value followed by a NUL byte. An empty map is zero
// bytes (hosts also accept a lone NUL from some SDKs). Bytes after the last pair are
// ignored, as hosts ignore them.

// AppendPairs appends pairs in the pairs format to dst; no pairs append nothing.
func AppendPairs(dst []byte, pairs [][2]string) []byte {
	if len(pairs) == 0 {
		return dst
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(pairs)))
	for _, p := range pairs {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p[0])))
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p[1])))
	}
	for _, p := range pairs {
		dst = append(append(dst, p[0]...), 0)
		dst = append(append(dst, p[1]...), 0)
	}
	return dst
}

// EncodePairs is AppendPairs into a new string of exactly the needed size.
func EncodePairs(pairs [][2]string) string {
	if len(pairs) == 0 {
		return ""
	}
	n := 4 + 8*len(pairs)
	for _, p := range pairs {
		n += len(p[0]) + len(p[1]) + 2
	}
	return string(AppendPairs(make([]byte, 0, n), pairs))
}

// ErrMalformedPairs is returned for data that is not in the pairs format.
var ErrMalformedPairs = errors.New("abi: data is not in the header-pairs format")

// ErrTooManyPairs is returned by DecodePairs when the count passes its limit.
var ErrTooManyPairs = errors.New("abi: header map has more pairs than allowed")

// DecodePairs reads a whole header map, copying keys and values. maxPairs bounds the
// count before anything is allocated (0: no bound).
func DecodePairs(data []byte, maxPairs int) ([][2]string, error) {
	r, err := NewPairsReader(unsafeString(data))
	if err != nil {
		return nil, err
	}
	if maxPairs > 0 && r.Len() > maxPairs {
		return nil, ErrTooManyPairs
	}
	out := make([][2]string, 0, r.Len())
	for {
		k, v, ok := r.Next()
		if !ok {
			break
		}
		out = append(out, [2]string{string([]byte(k)), string([]byte(v))})
	}
	if r.Err() != nil {
		return nil, r.Err()
	}
	return out, nil
}

// PairsReader walks a header map in the pairs format without allocating: the keys
// and values it returns are views into the data it was given. The router reads every
// request's headers this way.
type PairsReader struct {
	data    string
	n, i    uint32
	off     uint64 // where the next key starts
	corrupt bool
}

// NewPairsReader checks the header of data (count and length table) and returns a
// reader positioned at the first pair.
func NewPairsReader(data string) (PairsReader, error) {
	if len(data) == 0 || data == "\x00" {
		return PairsReader{}, nil
	}
	if len(data) < 4 {
		return PairsReader{}, ErrMalformedPairs
	}
	n := le32(data)
	if uint64(len(data)) < 4+8*uint64(n) {
		return PairsReader{}, ErrMalformedPairs
	}
	return PairsReader{data: data, n: n, off: 4 + 8*uint64(n)}, nil
}

// Len is the number of pairs the data announces.
func (r *PairsReader) Len() int { return int(r.n) }

// Next returns the next pair; ok is false at the end or when the data turns out to
// be malformed (see Err).
func (r *PairsReader) Next() (key, value string, ok bool) {
	if r.i >= r.n || r.corrupt {
		return "", "", false
	}
	kl := uint64(le32(r.data[4+8*r.i:]))
	vl := uint64(le32(r.data[8+8*r.i:]))
	rest := uint64(len(r.data)) - r.off
	if rest < kl+vl+2 || r.data[r.off+kl] != 0 || r.data[r.off+kl+1+vl] != 0 {
		r.corrupt = true
		return "", "", false
	}
	key = r.data[r.off : r.off+kl]
	value = r.data[r.off+kl+1 : r.off+kl+1+vl]
	r.off += kl + vl + 2
	r.i++
	return key, value, true
}

// Err is ErrMalformedPairs when Next stopped at data not in the format, else nil.
func (r *PairsReader) Err() error {
	if r.corrupt {
		return ErrMalformedPairs
	}
	return nil
}

func le32(s string) uint32 {
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}
