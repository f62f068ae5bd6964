package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxBody is the largest request body accepted; larger ones are answered 413.
const maxBody = 64 << 10

// errTooLarge marks a body over maxBody.
var errTooLarge = errors.New("request body is larger than 64 KiB")

// readBody reads at most maxBody bytes of r's body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, errTooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("could not read the request body: %v", err)
	}
	return b, nil
}

// decodeStringObject reads body as one JSON object whose members are all strings,
// and is strict where encoding/json is lenient, because a write that is not exactly
// what the client meant must not be half-applied: it refuses invalid UTF-8 (which
// encoding/json would silently replace), duplicate keys (which it would silently
// resolve to the last one), members not in allowed (naming them), non-string values
// and anything after the object. Key matching is exact (case-sensitive).
func decodeStringObject(body []byte, allowed ...string) (map[string]string, error) {
	out, _, err := decodeObject(body, allowed, nil)
	return out, err
}

// decodeObject is decodeStringObject where the members named in raw may hold any
// JSON value, handed back undecoded (for the caller to read as strictly).
func decodeObject(body []byte, allowed, raw []string) (map[string]string, map[string]json.RawMessage, error) {
	all := append(slices.Clone(allowed), raw...)
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil, errors.New("request body is empty; send a JSON object such as " + example(allowed))
	}
	if !utf8.Valid(body) {
		return nil, nil, errors.New("request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, invalidJSON(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, errors.New("request body must be a JSON object such as " + example(allowed))
	}
	out := map[string]string{}
	raws := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, invalidJSON(err)
		}
		key := tok.(string) // object keys are always strings
		_, dup := out[key]
		if _, dupRaw := raws[key]; dup || dupRaw {
			return nil, nil, fmt.Errorf("field %q appears more than once; send it once", key)
		}
		if slices.Contains(raw, key) {
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return nil, nil, invalidJSON(err)
			}
			raws[key] = v
			continue
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, nil, invalidJSON(err)
		}
		if !slices.Contains(allowed, key) {
			return nil, nil, fmt.Errorf("field %q is not known; the fields are %s", key, strings.Join(quoteAll(all), ", "))
		}
		s, ok := tok.(string)
		if !ok {
			return nil, nil, fmt.Errorf("field %q must be a JSON string", key)
		}
		out[key] = s
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, nil, invalidJSON(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("invalid JSON: unexpected data after the object")
	}
	return out, raws, nil
}

func invalidJSON(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("invalid JSON: the body ends early")
	}
	return fmt.Errorf("invalid JSON: %v", err)
}

func example(fields []string) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = fmt.Sprintf("%q: \"...\"", f)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func quoteAll(list []string) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}
