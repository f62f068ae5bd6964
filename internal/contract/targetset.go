package contract

import (
	"errors"
	"strconv"
	"strings"

	"switchyard/internal/validate"
)

// A target set is the one string that carries a server name's targets: the value of
// a route entry in shared data and of a route in a v3 sync answer.
//
//   - A set that is exactly one target, active, weight > 0 and not down is its plain
//     address ("10.1.2.3:8080"), as tables and registrars before target sets wrote it.
//   - Any other set is '*' followed by entries separated by ',': address '/' weight,
//     optionally '/' flags, flags a run of lowercase letters: 'd' draining, 'x' down
//     by the registrar's active health check. Unknown letters are ignored by the
//     reader, so a later registrar can add a flag without breaking older filters.
//
// Example: "*127.0.0.1:9101/90,127.0.0.1:9102/10/d,127.0.0.1:9103/0".
// Addresses obey validate.ParseAddress, so they never hold '*', ',', '/' or spaces.
const (
	TargetSetMarker = '*' // first byte of a set that is not one plain address
	MaxTargets      = 64  // entries in one set
	MaxWeight       = 100 // highest weight of one entry
	FlagDraining    = 'd' // the entry takes no new requests
	FlagDown        = 'x' // the registrar's active health check found the entry down
)

// Target is one entry of a target set. The reader fills Address with a substring of
// the set, so reading allocates nothing.
type Target struct {
	Address  string
	Weight   int
	Draining bool
	Down     bool
}

// Routable reports whether the entry may take new requests when healthy: not
// draining and weight > 0. Down entries are routable only in panic (LAYOUT.md).
func (t Target) Routable() bool { return !t.Draining && t.Weight > 0 }

// Active reports whether the entry is the kind the set's plain form stands for:
// routable and not down.
func (t Target) Active() bool { return t.Routable() && !t.Down }

// TargetReader walks a target set entry by entry without allocating. A malformed
// entry stops the walk and sets Bad; the sync refuses such sets (CheckTargetSet), so
// the router meets them only if shared data was written by something else.
type TargetReader struct {
	s   string
	pos int
	Bad bool // the walk stopped at an entry that is not address/weight[/flags]
}

// ReadTargets starts a walk over the set s ("" has no entries).
func ReadTargets(s string) TargetReader {
	if s != "" && s[0] == TargetSetMarker {
		return TargetReader{s: s, pos: 1}
	}
	return TargetReader{s: s}
}

// Next gives the next entry, or ok false at the end (or at a malformed entry, with
// Bad set). A plain address gives one entry of weight 1.
func (r *TargetReader) Next() (t Target, ok bool) {
	if r.pos >= len(r.s) || r.Bad {
		return Target{}, false
	}
	if r.pos == 0 { // the plain form: the whole string is the one address
		r.pos = len(r.s)
		return Target{Address: r.s, Weight: 1}, true
	}
	end := strings.IndexByte(r.s[r.pos:], ',')
	if end < 0 {
		end = len(r.s)
	} else {
		end += r.pos
	}
	entry := r.s[r.pos:end]
	r.pos = end + 1
	if end == len(r.s)-1 { // a trailing ',' leaves an empty last entry
		r.Bad = true
	}
	slash := strings.IndexByte(entry, '/')
	if slash <= 0 {
		r.Bad = true
		return Target{}, false
	}
	t.Address = entry[:slash]
	rest := entry[slash+1:]
	flags := ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest, flags = rest[:i], rest[i+1:]
		if flags == "" {
			r.Bad = true
			return Target{}, false
		}
	}
	if len(rest) == 0 || len(rest) > 3 || (len(rest) > 1 && rest[0] == '0') {
		r.Bad = true
		return Target{}, false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if c < '0' || c > '9' {
			r.Bad = true
			return Target{}, false
		}
		t.Weight = t.Weight*10 + int(c-'0')
	}
	if t.Weight > MaxWeight {
		r.Bad = true
		return Target{}, false
	}
	for i := 0; i < len(flags); i++ {
		switch c := flags[i]; {
		case c == FlagDraining:
			t.Draining = true
		case c == FlagDown:
			t.Down = true
		case c < 'a' || c > 'z':
			r.Bad = true
			return Target{}, false
		}
	}
	return t, true
}

// FirstActiveTarget gives the address v1 and v2 answers carry for a set: the first
// entry that is not draining or down with weight > 0, else the first entry; "" when
// no entry can be read. The address is a substring of s.
func FirstActiveTarget(s string) string {
	r := ReadTargets(s)
	first := ""
	for t, ok := r.Next(); ok; t, ok = r.Next() {
		if t.Active() {
			return t.Address
		}
		if first == "" {
			first = t.Address
		}
	}
	return first
}

// CheckTargetSet reports why s is not a target set a registrar may publish, or nil:
// 1–64 entries, each address valid (validate.ParseAddress) and not repeated, weights
// 0–100 written without leading zeros, flags lowercase letters, and a one-entry set
// that is active written in the plain form.
func CheckTargetSet(s string) error {
	if s == "" {
		return errors.New("target set has no targets: give at least one")
	}
	if s[0] != TargetSetMarker {
		// The plain form, one active target (nearly every set of a large table): its
		// address is the whole check.
		if validate.ValidAddress(s) {
			return nil
		}
		_, err := validate.ParseAddress(s)
		return errors.New("target 1: address " + err.Error())
	}
	r := ReadTargets(s)
	n := 0
	var single Target
	for t, ok := r.Next(); ok; t, ok = r.Next() {
		n++
		if n > MaxTargets {
			return errors.New("target set has more than " + strconv.Itoa(MaxTargets) + " targets")
		}
		if _, err := validate.ParseAddress(t.Address); err != nil {
			return errors.New("target " + strconv.Itoa(n) + ": address " + err.Error())
		}
		r2 := ReadTargets(s)
		for i := 1; i < n; i++ {
			u, _ := r2.Next()
			if u.Address == t.Address {
				return errors.New("target " + strconv.Itoa(n) + ": address '" + t.Address + "' appears twice")
			}
		}
		single = t
	}
	if r.Bad {
		return errors.New("target " + strconv.Itoa(n+1) + " is not address/weight[/flags] with a weight 0-" + strconv.Itoa(MaxWeight))
	}
	if n == 0 {
		return errors.New("target set has no targets: give at least one")
	}
	if n == 1 && s[0] == TargetSetMarker && single.Active() {
		return errors.New("a set of one active target must be written as its plain address")
	}
	return nil
}

// AppendTargetSet appends the encoding of ts to dst: the plain address for one active
// target, else the '*' form with flags "d" and "x" in that order. It does not check
// ts; EncodeTargetSet does.
func AppendTargetSet(dst []byte, ts []Target) []byte {
	if len(ts) == 1 && ts[0].Active() {
		return append(dst, ts[0].Address...)
	}
	dst = append(dst, TargetSetMarker)
	for i, t := range ts {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, t.Address...)
		dst = append(dst, '/')
		dst = strconv.AppendInt(dst, int64(t.Weight), 10)
		if t.Draining || t.Down {
			dst = append(dst, '/')
			if t.Draining {
				dst = append(dst, FlagDraining)
			}
			if t.Down {
				dst = append(dst, FlagDown)
			}
		}
	}
	return dst
}

// EncodeTargetSet gives the target-set string of ts, or why ts cannot be one (the
// rules of CheckTargetSet).
func EncodeTargetSet(ts []Target) (string, error) {
	if len(ts) > MaxTargets {
		return "", errors.New("target set has more than " + strconv.Itoa(MaxTargets) + " targets")
	}
	for i, t := range ts {
		if t.Weight < 0 || t.Weight > MaxWeight {
			return "", errors.New("target " + strconv.Itoa(i+1) + ": weight must be an integer 0-" + strconv.Itoa(MaxWeight))
		}
	}
	s := string(AppendTargetSet(nil, ts))
	if err := CheckTargetSet(s); err != nil {
		return "", err
	}
	return s, nil
}
