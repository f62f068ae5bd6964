package abi

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestPairsRoundTrip(t *testing.T) {
	for _, pairs := range [][][2]string{
		nil,
		{{":path", "/sys/x"}},
		{{":authority", "a"}, {"x-server-name", "web-1"}, {"empty", ""}, {"", "empty key"}},
		{{"k", strings.Repeat("v", 70000)}},
	} {
		enc := EncodePairs(pairs)
		if got := string(AppendPairs([]byte("prefix"), pairs)); got != "prefix"+enc {
			t.Errorf("AppendPairs does not append the same bytes as EncodePairs")
		}
		dec, err := DecodePairs([]byte(enc), 0)
		if err != nil {
			t.Fatalf("DecodePairs(EncodePairs(%d pairs)): %v", len(pairs), err)
		}
		if len(pairs) == 0 && len(dec) == 0 {
			continue
		}
		if !reflect.DeepEqual(dec, pairs) {
			t.Errorf("round trip of %q gave %q", pairs, dec)
		}
	}
}

func TestPairsWireFormat(t *testing.T) {
	// Two pairs: count 2, lengths (1,2) and (0,1), then "a\x00bc\x00" and "\x00d\x00".
	want := "\x02\x00\x00\x00" + "\x01\x00\x00\x00\x02\x00\x00\x00" + "\x00\x00\x00\x00\x01\x00\x00\x00" + "a\x00bc\x00" + "\x00d\x00"
	if got := EncodePairs([][2]string{{"a", "bc"}, {"", "d"}}); got != want {
		t.Fatalf("EncodePairs = %q, want %q", got, want)
	}
}

func TestPairsMalformed(t *testing.T) {
	good := EncodePairs([][2]string{{"a", "bc"}, {"d", "e"}})
	for name, data := range map[string]string{
		"short count":        "\x01\x00",
		"count past the end": "\x05\x00\x00\x00" + good[4:],
		"key without NUL":    strings.Replace(good, "a\x00", "aX", 1),
		"value without NUL":  good[:len(good)-1] + "X",
		"truncated":          good[:len(good)-2],
	} {
		if _, err := DecodePairs([]byte(data), 0); !errors.Is(err, ErrMalformedPairs) {
			t.Errorf("%s: DecodePairs err = %v, want ErrMalformedPairs", name, err)
		}
	}
	for _, empty := range []string{"", "\x00"} {
		if got, err := DecodePairs([]byte(empty), 0); err != nil || len(got) != 0 {
			t.Errorf("DecodePairs(%q) = %q, %v; want an empty map", empty, got, err)
		}
	}
	if _, err := DecodePairs([]byte(good), 1); !errors.Is(err, ErrTooManyPairs) {
		t.Errorf("DecodePairs over maxPairs: err = %v, want ErrTooManyPairs", err)
	}
}

func TestPairsReaderAllocatesNothing(t *testing.T) {
	data := EncodePairs([][2]string{{":path", "/sys/a"}, {":authority", "x"}, {"x-server-name", "web-1"}})
	var name string
	allocs := testing.AllocsPerRun(100, func() {
		r, _ := NewPairsReader(data)
		for k, v, ok := r.Next(); ok; k, v, ok = r.Next() {
			if k == "x-server-name" {
				name = v
			}
		}
	})
	if allocs != 0 || name != "web-1" {
		t.Fatalf("reader: %v allocations, name %q; want 0 and web-1", allocs, name)
	}
}

func TestStatusAndLevelNames(t *testing.T) {
	if StatusCasMismatch.String() != "CasMismatch" || Status(99).String() != "Status(99)" {
		t.Errorf("Status names: %s, %s", StatusCasMismatch, Status(99))
	}
	if LogWarn.String() != "warn" || LogLevel(9).String() != "LogLevel(9)" {
		t.Errorf("LogLevel names: %s, %s", LogWarn, LogLevel(9))
	}
}

// FuzzPairs: any input either decodes to pairs whose encoding is the input (up to
// bytes after the last pair, which hosts ignore), or is refused; the reader never
// panics and never reads past the end.
func FuzzPairs(f *testing.F) {
	f.Add([]byte(EncodePairs([][2]string{{"a", "b"}})))
	f.Add([]byte("\x01\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pairs, err := DecodePairs(data, 1024)
		if err != nil {
			return
		}
		if len(pairs) == 0 {
			return
		}
		if enc := EncodePairs(pairs); !strings.HasPrefix(string(data), enc) {
			t.Fatalf("decoded %q but it encodes to %q, which does not start the input %q", pairs, enc, data)
		}
	})
}
