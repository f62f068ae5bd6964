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
	From     uint64   // Delta only
	Routes   Routes   // Full: the page's (name, target), in byte order (V1: any order); Delta: the upserts
	Removals []string // Delta only
	Next     string   // Full: the first name of the next page; "" on the last page
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
	// The fields are located first (gjson reads invalid JSON without harm), so that the
	// routes, nearly all of a page's bytes, are checked once (validJSON); nothing found
	// is used before the body is known to be valid JSON.
	root := gjson.Parse(unsafe.String(&body[0], len(body)))
	// Get would take the first of two equal keys and a Go decoder the last: an answer
	// that means two things is refused.
	var kind, lineage, rev, from, routes, upserts, removals, next gjson.Result
	fields := map[string]*gjson.Result{contract.AnswerKind: &kind, contract.AnswerLineage: &lineage,
		contract.AnswerRevision: &rev, contract.AnswerFrom: &from, contract.AnswerRoutes: &routes,
		contract.AnswerUpserts: &upserts, contract.AnswerRemovals: &removals, contract.AnswerNext: &next}
	var err error
	if root.IsObject() {
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
	}
	// The routes (or upserts) of the usual form are checked here, in the pass that also
	// proves them valid JSON; parseRoutes takes the result.
	pre := precheck{v: routes, ordered: kind.Str == contract.KindFull}
	if !routes.Exists() {
		pre = precheck{v: upserts}
	}
	if !validJSON(body, &pre) {
		return a, errors.New("body is not valid JSON")
	}
	if !root.IsObject() {
		return a, errors.New("body is not a JSON object")
	}
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
		a.Routes, err = parseRoutes(contract.AnswerRoutes, routes, false, pre)
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
		if a.Routes, err = parseRoutes(contract.AnswerRoutes, routes, true, pre); err != nil {
			return a, err
		}
		if next.Exists() {
			if next.Type != gjson.String || !validate.IsServerName(next.Str) {
				return a, errors.New("\"" + contract.AnswerNext + "\" " + quote(next.Raw) + " is not a server name")
			}
			if a.Routes.Len() == 0 || next.Str <= a.Routes.Last() {
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
		if a.Routes, err = parseRoutes(contract.AnswerUpserts, upserts, false, pre); err != nil {
			return a, err
		}
		if a.Removals, err = parseRemovals(removals); err != nil {
			return a, err
		}
		seen := make(map[string]struct{}, a.Routes.Len()+len(a.Removals))
		for name := range a.Routes.All() {
			seen[name] = struct{}{}
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

// Routes is the (name, target set) pairs of an answer, in the answer's order, as views
// into its body. A page of 1,000,000 names' table holds some 170,000 of them: they are
// not copied into a slice (in a Wasm VM that slice and its GC cost more than the
// parse), but read again from the JSON text by All, which the check has proved to be
// of the plain form.
type Routes struct {
	raw         string      // the JSON object, when every member is plain (pairScanner)
	list        [][2]string // else the pairs as gjson decoded them
	n           int
	first, last string
}

// Len is the number of pairs.
func (r Routes) Len() int { return r.n }

// First and Last are the first and last names ("" when there are none).
func (r Routes) First() string { return r.first }
func (r Routes) Last() string  { return r.last }

// All yields the pairs in the answer's order.
func (r Routes) All() func(yield func(name, target string) bool) {
	return func(yield func(name, target string) bool) {
		it := r.iter()
		for name, target, ok := it.next(); ok; name, target, ok = it.next() {
			if !yield(name, target) {
				return
			}
		}
	}
}

// iter walks the pairs without a callback per pair (the poller's loop over a page).
func (r Routes) iter() routeIter {
	if r.list != nil {
		return routeIter{list: r.list}
	}
	return routeIter{sc: pairScanner{raw: r.raw, i: 1}, scan: true}
}

type routeIter struct {
	list [][2]string
	i    int
	sc   pairScanner
	scan bool
}

func (it *routeIter) next() (name, target string, ok bool) {
	if it.scan {
		name, target, ok, _ = it.sc.next()
		return name, target, ok
	}
	if it.i >= len(it.list) {
		return "", "", false
	}
	p := it.list[it.i]
	it.i++
	return p[0], p[1], true
}

// parseRoutes reads a name → target object. ordered asks for strictly ascending byte
// order (a page), which also rules out a name twice; otherwise duplicates are found
// with a set. The usual answer (every name and target a string without escapes, all
// valid) is checked in one pass of a pairScanner; anything else goes through gjson,
// which decodes escapes and names what is wrong. Both accept exactly the same answers
// (FuzzAnswer holds them to it).
func parseRoutes(field string, v gjson.Result, ordered bool, pre precheck) (Routes, error) {
	if !v.Exists() {
		return Routes{}, errors.New("\"" + field + "\" is missing")
	}
	if !v.IsObject() {
		return Routes{}, errors.New("\"" + field + "\" is not an object")
	}
	if pre.done && pre.v.Raw == v.Raw && pre.ordered == ordered {
		if pre.ok {
			return pre.r, nil
		}
	} else if r, ok := checkPlainRoutes(v.Raw, ordered); ok {
		return r, nil
	}
	return decodeRoutes(v, ordered)
}

// precheck is checkPlainRoutes run on the routes (or upserts) gjson located, before
// the body is known to be valid JSON: validJSON runs it, parseRoutes uses its result
// when it asks the same of the same text.
type precheck struct {
	v       gjson.Result
	ordered bool
	done    bool // checkPlainRoutes ran
	ok      bool
	r       Routes
}

// checkPlainRoutes checks raw in one pass without decoding: ok is false as soon as a
// member is not plain or not valid, and the caller decodes it to tell why.
func checkPlainRoutes(raw string, ordered bool) (Routes, bool) {
	var seen map[string]struct{}
	if !ordered {
		seen = make(map[string]struct{})
	}
	sc := pairScanner{raw: raw, i: 1}
	n := 0
	var first, last string
	for {
		name, target, more, plain := sc.next()
		if !plain {
			return Routes{}, false
		}
		if !more {
			break
		}
		if !validate.IsServerName(name) || contract.CheckTargetSet(target) != nil {
			return Routes{}, false
		}
		if ordered {
			if n > 0 && name <= last {
				return Routes{}, false
			}
		} else {
			if _, dup := seen[name]; dup {
				return Routes{}, false
			}
			seen[name] = struct{}{}
		}
		if n == 0 {
			first = name
		}
		last = name
		n++
	}
	if n == 0 {
		return Routes{list: [][2]string{}}, true
	}
	return Routes{raw: raw, n: n, first: first, last: last}, true
}

// validJSON reports whether body is valid JSON. pre.v is the value gjson located as
// the routes (or upserts): when it is an object of the plain form that
// checkPlainRoutes accepts (its pairScanner checks the form strictly), gjson checks the
// rest of the body with "{}" in its place; otherwise gjson checks the whole body. A
// page's routes are nearly all its bytes, and in a Wasm VM gjson's check of them cost
// a fifth of the page's parse.
func validJSON(body []byte, pre *precheck) bool {
	raw := pre.v.Raw
	if pre.v.IsObject() {
		start := uintptr(unsafe.Pointer(unsafe.StringData(raw)))
		base := uintptr(unsafe.Pointer(&body[0]))
		if start >= base && start-base+uintptr(len(raw)) <= uintptr(len(body)) {
			pre.r, pre.ok = checkPlainRoutes(raw, pre.ordered)
			pre.done = true
			if pre.ok {
				off := int(start - base)
				rest := make([]byte, 0, len(body)-len(raw)+2)
				rest = append(append(append(rest, body[:off]...), "{}"...), body[off+len(raw):]...)
				return gjson.ValidBytes(rest)
			}
		}
	}
	return gjson.ValidBytes(body)
}

// pairScanner reads the members of a JSON object of the plain form (every member a
// string holding no escape and no control character) as views into raw. i starts just
// after the '{'.
type pairScanner struct {
	raw string
	i   int
	n   int // members read
}

// next gives the next member; more is false at the end of the object. plain is false
// at anything else: a value that is not such a string, a missing ':' or ',', a ','
// before the '}', text after the object's '}'.
func (sc *pairScanner) next() (name, value string, more, plain bool) {
	raw := sc.raw
	i := skipSpace(raw, sc.i)
	if i >= len(raw) {
		return "", "", false, false
	}
	if raw[i] == '}' {
		return "", "", false, i == len(raw)-1
	}
	if sc.n > 0 {
		if raw[i] != ',' {
			return "", "", false, false
		}
		i = skipSpace(raw, i+1)
	}
	name, i, ok := plainString(raw, i)
	if !ok {
		return "", "", false, false
	}
	if i = skipSpace(raw, i); i >= len(raw) || raw[i] != ':' {
		return "", "", false, false
	}
	value, i, ok = plainString(raw, skipSpace(raw, i+1))
	if !ok {
		return "", "", false, false
	}
	sc.i, sc.n = i, sc.n+1
	return name, value, true, true
}

// plainString reads the JSON string starting at raw[i] ('"'); ok is false when raw[i]
// does not start a string or the string holds an escape or a control character. end
// is just after its closing quote.
func plainString(raw string, i int) (s string, end int, ok bool) {
	if i >= len(raw) || raw[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(raw); j++ {
		switch c := raw[j]; {
		case c == '"':
			return raw[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}

func skipSpace(raw string, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\n' || raw[i] == '\r' || raw[i] == '\t') {
		i++
	}
	return i
}

// decodeRoutes is parseRoutes through gjson's decoder.
func decodeRoutes(v gjson.Result, ordered bool) (Routes, error) {
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
	if err != nil {
		return Routes{}, err
	}
	r := Routes{list: out, n: len(out)}
	if len(out) > 0 {
		r.first, r.last = out[0][0], out[len(out)-1][0]
	}
	return r, nil
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
	return len(s) > 0 && len(s) <= MaxLineage && validate.VisibleASCII(s)
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
