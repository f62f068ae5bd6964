package main

import (
	"errors"
	"strconv"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"

	"switchyard/internal/validate"
)

// Snapshot is one complete route table from the registrar:
// {"revision": R, "routes": {"web-1": "10.1.2.3:8080", ...}}.
type Snapshot struct {
	Revision uint64
	Routes   map[string]string // server name → target, as registered
}

// ParseSnapshot validates a registrar answer completely before anything may be
// written: valid JSON, a non-negative integer "revision" newer than current (any
// revision when loaded is false), a "routes" object whose keys are valid server names
// (each once) and whose values are valid target addresses. Other top-level keys are
// ignored, so the registrar may add fields.
//
// The table's strings are views into body, not copies: a snapshot costs its body plus
// the map and nothing per entry. body must not be modified afterwards. Each snapshot
// gets a new map and nothing is carried over from the previous one, so an old body
// is freed together with the old table.
func ParseSnapshot(body []byte, current uint64, loaded bool) (Snapshot, error) {
	if len(body) == 0 {
		return Snapshot{}, errors.New("empty body")
	}
	if !gjson.ValidBytes(body) {
		return Snapshot{}, errors.New("body is not valid JSON")
	}
	// gjson hands out substrings of its input (escaped strings are unescaped copies).
	root := gjson.Parse(unsafe.String(&body[0], len(body)))
	if !root.IsObject() {
		return Snapshot{}, errors.New("body is not a JSON object")
	}
	// Get would take the first of two "revision" (or "routes") keys and a Go decoder
	// the last: an answer that means two things is refused.
	var rev, routes gjson.Result
	var dup string
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "revision":
			if rev.Exists() {
				dup = k.Str
			}
			rev = v
		case "routes":
			if routes.Exists() {
				dup = k.Str
			}
			routes = v
		}
		return dup == ""
	})
	if dup != "" {
		return Snapshot{}, errors.New("\"" + dup + "\" appears twice")
	}
	if !rev.Exists() {
		return Snapshot{}, errors.New("\"revision\" is missing")
	}
	if rev.Type != gjson.Number {
		return Snapshot{}, errors.New("\"revision\" is not a number")
	}
	r, err := strconv.ParseUint(rev.Raw, 10, 64)
	if err != nil {
		return Snapshot{}, errors.New("\"revision\" " + rev.Raw + " is not a non-negative integer")
	}
	if loaded && r <= current {
		return Snapshot{}, errors.New("revision " + rev.Raw + " is not newer than the live revision " + strconv.FormatUint(current, 10))
	}
	if !routes.Exists() {
		return Snapshot{}, errors.New("\"routes\" is missing")
	}
	if !routes.IsObject() {
		return Snapshot{}, errors.New("\"routes\" is not an object")
	}
	table := make(map[string]string, countHint(routes.Raw))
	routes.ForEach(func(k, v gjson.Result) bool {
		name := k.Str
		if !validate.IsServerName(name) {
			err = errors.New("server name " + quote(name) + " is invalid: " + validate.ServerName(name).Error())
			return false
		}
		if v.Type != gjson.String {
			err = errors.New("target of " + name + " is not a string")
			return false
		}
		if _, aerr := validate.ParseAddress(v.Str); aerr != nil {
			err = errors.New("target " + quote(v.Str) + " of " + name + " is invalid: " + aerr.Error())
			return false
		}
		if _, dup := table[name]; dup {
			err = errors.New("server name " + name + " appears twice")
			return false
		}
		table[name] = v.Str
		return true
	})
	if err != nil {
		return Snapshot{}, err
	}
	return Snapshot{Revision: r, Routes: table}, nil
}

// countHint estimates the number of routes from the JSON text (names and targets
// hold no ',', so entries are separated by the only commas) so the map is sized
// once instead of growing through every power of two.
func countHint(raw string) int {
	n := strings.Count(raw, ",") + 1
	if n > 1<<20 {
		n = 1 << 20
	}
	return n
}

// quote shows a rejected value in a log line: at most 60 bytes, in quotes.
func quote(s string) string {
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return strconv.Quote(s)
}
