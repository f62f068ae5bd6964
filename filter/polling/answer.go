package polling

import (
	"errors"
	"strconv"
	"unsafe"

	"github.com/tidwall/gjson"

	"switchyard/internal/contract"
	"switchyard/internal/validate"
)

// Kind is what a 200 answer of GET /v1/routes holds (docs/sync-protocol.md).
type Kind int

const (
	// Full is one page of the full table, or a version-1 answer (the whole table).
	Full Kind = iota + 1
	// Delta is the changes from revision From to Revision.
	Delta
)

// Answer is a 200 answer of the registrar, checked on its own (ParseAnswer); whether
// it fits the table the poller holds (lineage, from, the page's place) is the Machine's
// to check. Strings are views into the body it was parsed from.
type Answer struct {
	Kind     Kind
	V1       bool   // a version-1 answer: no kind, no lineage, the whole table at once
	Lineage  string // "" only for V1
	Revision uint64
	From     uint64      // Delta only
	Routes   [][2]string // Full: the page's (name, target), in byte order (V1: any order); Delta: the upserts
	Removals []string    // Delta only
	Next     string      // Full: the first name of the next page; "" on the last page
}

// MaxLineage bounds a lineage's length; the registrar's are 32 hex digits or an etcd
// derived id, far shorter.
const MaxLineage = 128

// ParseAnswer validates a 200 answer completely before anything may be written: JSON
// that is one object, each known key at most once, a known "kind" (none: version 1),
// a non-negative integer revision (and from, below it, for a delta), a lineage of
// visible ASCII, every server name and every target valid by the rules the registrar
// enforces on writes (internal/validate), no name twice in the answer, the names of a
// page in strictly ascending byte order and "next" after the last of them. Unknown
// keys are ignored so the registrar may add fields.
//
// The strings of the result are views into body, which must not change while they
// are used; the Machine copies what it keeps.
func ParseAnswer(body []byte) (Answer, error) {
	var a Answer
	if len(body) == 0 {
		return a, errors.New("empty body")
	}
	if !gjson.ValidBytes(body) {
		return a, errors.New("body is not valid JSON")
	}
	root := gjson.Parse(unsafe.String(&body[0], len(body)))
	if !root.IsObject() {
		return a, errors.New("body is not a JSON object")
	}
	// Get would take the first of two equal keys and a Go decoder the last: an answer
	// that means two things is refused.
	var kind, lineage, rev, from, routes, upserts, removals, next gjson.Result
	fields := map[string]*gjson.Result{contract.AnswerKind: &kind, contract.AnswerLineage: &lineage,
		contract.AnswerRevision: &rev, contract.AnswerFrom: &from, contract.AnswerRoutes: &routes,
		contract.AnswerUpserts: &upserts, contract.AnswerRemovals: &removals, contract.AnswerNext: &next}
	var err error
	root.ForEach(func(k, v gjson.Result) bool {
		if p, ok := fields[k.Str]; ok {
			if p.Exists() {
				err = errors.New("\"" + k.Str + "\" appears twice")
				return false
			}
			*p = v
		}
		return true
	})
	if err != nil {
		return a, err
	}
	if a.Revision, err = uintField(contract.AnswerRevision, rev); err != nil {
		return a, err
	}
	if !kind.Exists() {
		for _, f := range []struct {
			name string
			v    gjson.Result
		}{{contract.AnswerUpserts, upserts}, {contract.AnswerRemovals, removals}, {contract.AnswerNext, next}, {contract.AnswerFrom, from}, {contract.AnswerLineage, lineage}} {
			if f.v.Exists() {
				return a, errors.New("\"" + contract.AnswerKind + "\" is missing but \"" + f.name + "\" is present")
			}
		}
		a.Kind, a.V1 = Full, true
		a.Routes, err = parseRoutes(contract.AnswerRoutes, routes, false)
		return a, err
	}
	if kind.Type != gjson.String {
		return a, errors.New("\"" + contract.AnswerKind + "\" is not a string")
	}
	if !lineage.Exists() {
		return a, errors.New("\"" + contract.AnswerLineage + "\" is missing")
	}
	if lineage.Type != gjson.String || !ValidLineage(lineage.Str) {
		return a, errors.New("\"" + contract.AnswerLineage + "\" " + quote(lineage.Raw) + " is not 1-128 characters of visible ASCII")
	}
	a.Lineage = lineage.Str
	switch kind.Str {
	case contract.KindFull:
		a.Kind = Full
		if upserts.Exists() || removals.Exists() || from.Exists() {
			return a, errors.New("a full table holds \"" + contract.AnswerUpserts + "\", \"" + contract.AnswerRemovals + "\" or \"" + contract.AnswerFrom + "\"")
		}
		if a.Routes, err = parseRoutes(contract.AnswerRoutes, routes, true); err != nil {
			return a, err
		}
		if next.Exists() {
			if next.Type != gjson.String || !validate.IsServerName(next.Str) {
				return a, errors.New("\"" + contract.AnswerNext + "\" " + quote(next.Raw) + " is not a server name")
			}
			if len(a.Routes) == 0 || next.Str <= a.Routes[len(a.Routes)-1][0] {
				return a, errors.New("\"" + contract.AnswerNext + "\" " + quote(next.Str) + " does not come after the page's last name")
			}
			a.Next = next.Str
		}
		return a, nil
	case contract.KindDelta:
		a.Kind = Delta
		if routes.Exists() || next.Exists() {
			return a, errors.New("a delta holds \"" + contract.AnswerRoutes + "\" or \"" + contract.AnswerNext + "\"")
		}
		if a.From, err = uintField(contract.AnswerFrom, from); err != nil {
			return a, err
		}
		if a.Revision <= a.From {
			return a, errors.New("delta to revision " + strconv.FormatUint(a.Revision, 10) + " is not after its \"" + contract.AnswerFrom + "\" " + strconv.FormatUint(a.From, 10))
		}
		if a.Routes, err = parseRoutes(contract.AnswerUpserts, upserts, false); err != nil {
			return a, err
		}
		if a.Removals, err = parseRemovals(removals); err != nil {
			return a, err
		}
		seen := make(map[string]struct{}, len(a.Routes)+len(a.Removals))
		for _, r := range a.Routes {
			seen[r[0]] = struct{}{}
		}
		for _, name := range a.Removals {
			if _, dup := seen[name]; dup {
				return a, errors.New("server name " + name + " appears twice")
			}
			seen[name] = struct{}{}
		}
		return a, nil
	}
	return a, errors.New("\"" + contract.AnswerKind + "\" " + quote(kind.Str) + " is neither \"" + contract.KindFull + "\" nor \"" + contract.KindDelta + "\"")
}

func uintField(name string, v gjson.Result) (uint64, error) {
	if !v.Exists() {
		return 0, errors.New("\"" + name + "\" is missing")
	}
	if v.Type != gjson.Number {
		return 0, errors.New("\"" + name + "\" is not a number")
	}
	n, err := strconv.ParseUint(v.Raw, 10, 64)
	if err != nil {
		return 0, errors.New("\"" + name + "\" " + quote(v.Raw) + " is not a non-negative integer")
	}
	return n, nil
}

// parseRoutes reads a name → target object. ordered asks for strictly ascending byte
// order (a page), which also rules out a name twice; otherwise duplicates are found
// with a set.
func parseRoutes(field string, v gjson.Result, ordered bool) ([][2]string, error) {
	if !v.Exists() {
		return nil, errors.New("\"" + field + "\" is missing")
	}
	if !v.IsObject() {
		return nil, errors.New("\"" + field + "\" is not an object")
	}
	out := make([][2]string, 0, countHint(v.Raw))
	var seen map[string]struct{}
	if !ordered {
		seen = make(map[string]struct{}, cap(out))
	}
	var err error
	v.ForEach(func(k, t gjson.Result) bool {
		name := k.Str
		if !validate.IsServerName(name) {
			err = errors.New("server name " + quote(name) + " is invalid: " + validate.ServerName(name).Error())
			return false
		}
		if t.Type != gjson.String {
			err = errors.New("target of " + name + " is not a string")
			return false
		}
		if aerr := contract.CheckTargetSet(t.Str); aerr != nil {
			err = errors.New("target set " + quote(t.Str) + " of " + name + " is invalid: " + aerr.Error())
			return false
		}
		if ordered {
			if len(out) > 0 && name <= out[len(out)-1][0] {
				err = errors.New("server name " + name + " is out of byte order (after " + out[len(out)-1][0] + ")")
				return false
			}
		} else {
			if _, dup := seen[name]; dup {
				err = errors.New("server name " + name + " appears twice")
				return false
			}
			seen[name] = struct{}{}
		}
		out = append(out, [2]string{name, t.Str})
		return true
	})
	return out, err
}

func parseRemovals(v gjson.Result) ([]string, error) {
	if !v.Exists() {
		return nil, errors.New("\"" + contract.AnswerRemovals + "\" is missing")
	}
	if !v.IsArray() {
		return nil, errors.New("\"" + contract.AnswerRemovals + "\" is not an array")
	}
	var out []string
	var err error
	v.ForEach(func(_, n gjson.Result) bool {
		if n.Type != gjson.String || !validate.IsServerName(n.Str) {
			err = errors.New("removal " + quote(n.Raw) + " is not a server name")
			return false
		}
		out = append(out, n.Str)
		return true
	})
	return out, err
}

// ValidLineage: 1 to MaxLineage bytes of visible ASCII (no space).
func ValidLineage(s string) bool {
	if len(s) == 0 || len(s) > MaxLineage {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// countHint estimates the number of entries from the JSON text (names and targets
// hold no ',') so a slice is sized once.
func countHint(raw string) int {
	n := 1
	for i := 0; i < len(raw); i++ {
		if raw[i] == ',' {
			n++
		}
	}
	return min(n, 1<<20)
}

// quote shows a rejected value in a log line: at most 60 bytes, in quotes.
func quote(s string) string {
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return strconv.Quote(s)
}
