// Package routing is the router's whole decision for one request, in plain Go: given
// the plugin configuration, the request's headers (in the proxy-wasm pairs format the
// host hands over) and the route table, it says what happens to the request — it
// passes untouched, it is routed to one target of its server's target set (smooth
// weighted round robin, balance.go), or it is answered with a rejection — and which
// request headers change. The filter's "router" root applies
// the decision through the ABI; this package makes no host call.
//
// It builds for wasip1 and natively, arms no timer, and a decision allocates nothing:
// the strings it gives point into the request's headers, the table's value and the
// Router's own buffer. A Router is therefore not safe for concurrent use, and a
// Decision is valid until the next Decide — which is how a proxy-wasm VM runs (one
// call at a time).
package routing

import (
	"strconv"
	"strings"
	"unsafe"

	"switchyard/internal/abi"
	"switchyard/internal/contract"
	"switchyard/internal/pluginconfig"
	"switchyard/internal/validate"
)

// Outcome is what the router does with one request.
type Outcome uint8

const (
	// Pass: the path is under no configured prefix (or the request has no :path); the
	// request continues untouched.
	Pass Outcome = iota
	// Routed: :authority becomes the server's target and the request continues.
	Routed
	// MissingServerName: the server-name header is absent or empty (400).
	MissingServerName
	// InvalidServerName: the server name breaks the naming rules (400).
	InvalidServerName
	// RoutesNotLoaded: no table has been loaded yet (503 with retry-after).
	RoutesNotLoaded
	// UnknownServer: the server name is not registered (404).
	UnknownServer
	// NoActiveTarget: every target of the server is draining or has weight 0 (503).
	NoActiveTarget

	numOutcomes = iota
)

// NumOutcomes is the number of outcomes, for arrays indexed by Outcome.
const NumOutcomes = numOutcomes

// Rejected reports whether the outcome is answered with a local reply.
func (o Outcome) Rejected() bool { return o >= MissingServerName && o < numOutcomes }

// Code is the machine-readable error of a rejection: the "error" field of the JSON
// reply, the local reply's details and the suffix of the rejection counter. "" for
// Pass and Routed.
func (o Outcome) Code() string {
	switch o {
	case MissingServerName:
		return contract.CodeMissingServerName
	case InvalidServerName:
		return contract.CodeInvalidServerName
	case RoutesNotLoaded:
		return contract.CodeRoutesNotLoaded
	case UnknownServer:
		return contract.CodeUnknownServer
	case NoActiveTarget:
		return contract.CodeNoActiveTarget
	}
	return ""
}

// Status is the HTTP status of a rejection's local reply; 0 for Pass and Routed.
func (o Outcome) Status() uint32 {
	switch o {
	case MissingServerName, InvalidServerName:
		return 400
	case RoutesNotLoaded, NoActiveTarget:
		return 503
	case UnknownServer:
		return 404
	}
	return 0
}

// String names the outcome: its error code for a rejection, else "pass" or "routed".
func (o Outcome) String() string {
	switch o {
	case Pass:
		return "pass"
	case Routed:
		return "routed"
	}
	if c := o.Code(); c != "" {
		return c
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// ReplyHeaders are the headers of a rejection's local reply: JSON, and for
// RoutesNotLoaded a retry-after of one second (a table usually arrives within it).
func (o Outcome) ReplyHeaders() [][2]string {
	h := [][2]string{{"content-type", "application/json"}}
	if o == RoutesNotLoaded {
		h = append(h, [2]string{"retry-after", "1"})
	}
	return h
}

// Table is the router's view of the route table. In the filter it reads shared data;
// tests use a map.
type Table interface {
	// Lookup gives the target set registered for a valid server name (a target-set
	// string, internal/contract/targetset.go); ok is false when the name has none
	// (never registered, or removed).
	Lookup(serverName string) (target string, ok bool)
	// Loaded reports whether a table has been loaded. Decide asks only when Lookup
	// found nothing, so a routed request costs one table read.
	Loaded() bool
}

// HeaderEdit is one change to the request's headers: Value replaces the first header
// named Header (adding it when there is none), or, when Remove is set, every header
// named Header is removed.
type HeaderEdit struct {
	Header string
	Value  string
	Remove bool
}

// Decision is the router's answer for one request.
type Decision struct {
	Outcome Outcome
	// ServerName is the request's server-name header ("" when absent).
	ServerName string
	// Target is the address a Routed request goes to, as its target set writes it
	// (without the default port).
	Target string
	// Panic: Routed although every routable target of the server is down or ejected
	// (chosen among them, rather than answering 503).
	Panic bool
	// FromSet: the target was chosen from a set of several entries (the '*' form), so
	// whether it fails matters to later choices; a name of one plain target is routed
	// there whatever its health.
	FromSet bool

	edits  [3]HeaderEdit
	nEdits int
}

// Edits are the header edits of a Routed request, in the order they are to be made;
// none for any other outcome.
func (d *Decision) Edits() []HeaderEdit { return d.edits[:d.nEdits] }

func (d *Decision) edit(e HeaderEdit) {
	d.edits[d.nEdits] = e
	d.nEdits++
}

// Router takes the routing decision for one plugin configuration.
type Router struct {
	header      string // the server-name header, lower-case
	prefixes    []string
	defaultPort string // decimal
	stripHeader bool
	// authority holds a target with the default port added: Decide builds it here so
	// that it allocates nothing.
	authority []byte
	// decision is the one Decide fills and hands out.
	decision Decision
	// balance keeps the round-robin state per name; ejections is the passive health
	// check's view (nil: none).
	balance   *balancer
	ejections Ejections
}

// New gives the Router of a (parsed, valid) configuration.
func New(cfg pluginconfig.Config) *Router {
	return &Router{
		header:      cfg.Header,
		prefixes:    cfg.PathPrefixes,
		defaultPort: strconv.Itoa(cfg.DefaultPort),
		stripHeader: cfg.StripHeader,
		authority:   make([]byte, validate.MaxLen+len(":65535")),
		balance:     new(balancer),
	}
}

// UseEjections makes Decide skip the targets e reports ejected (passive health).
func (r *Router) UseEjections(e Ejections) { r.ejections = e }

// Header is the configured server-name header.
func (r *Router) Header() string { return r.header }

// Decide is the whole decision for a request whose headers are in the pairs format,
// against the table t:
//
//   - a path under no configured prefix (segment-wise: "/sys" covers "/sys",
//     "/sys/..." and "/sys?...", not "/system"), or no :path: Pass;
//   - a server-name header absent or empty: MissingServerName; not a valid server
//     name: InvalidServerName (both before the table is read);
//   - no target set for the name: RoutesNotLoaded while no table is loaded, else
//     UnknownServer;
//   - no target of the set draining-free with weight > 0: NoActiveTarget;
//   - else Routed to the target the balancer picks, with the edits: :authority := the target (with the default port
//     when it has none); x-forwarded-host := the original :authority, or removed when
//     the request had none, so that a client's own value is never passed on as ours;
//     the server-name header removed when strip_header is set.
//
// A header that repeats counts by its first value, as proxy_get_header_map_value
// gives it. The error is abi.ErrMalformedPairs for headers not in the pairs format
// (the host's fault). The Decision is the Router's own, valid until the next Decide:
// handing it out by pointer spares copying it, and in a Go wasm module, where this
// code runs about ten times slower than natively, copies count.
func (r *Router) Decide(headers string, t Table) (*Decision, error) {
	d := &r.decision
	d.Outcome, d.ServerName, d.Target, d.Panic, d.FromSet, d.nEdits = Pass, "", "", false, false, 0
	req, err := readRequest(headers, r.header)
	if err != nil || !req.hasPath || !pluginconfig.MatchesPrefix(req.path, r.prefixes) {
		return d, err
	}
	d.ServerName = req.serverName
	if req.serverName == "" {
		d.Outcome = MissingServerName
		return d, nil
	}
	if !validate.IsServerName(req.serverName) {
		d.Outcome = InvalidServerName
		return d, nil
	}
	set, ok := t.Lookup(req.serverName)
	if !ok {
		d.Outcome = UnknownServer
		if !t.Loaded() {
			d.Outcome = RoutesNotLoaded
		}
		return d, nil
	}
	p := r.balance.pick(req.serverName, set, r.ejections)
	if p.target == "" {
		d.Outcome = NoActiveTarget
		return d, nil
	}
	d.Outcome, d.Target, d.Panic, d.FromSet = Routed, p.target, p.panic, set[0] == contract.TargetSetMarker
	d.edit(HeaderEdit{Header: ":authority", Value: r.withPort(p.target)})
	if req.authority != "" {
		d.edit(HeaderEdit{Header: "x-forwarded-host", Value: req.authority})
	} else {
		d.edit(HeaderEdit{Header: "x-forwarded-host", Remove: true})
	}
	if r.stripHeader {
		d.edit(HeaderEdit{Header: r.header, Remove: true})
	}
	return d, nil
}

// withPort gives the :authority for a target as the registrar stored it (validated by
// the sync): the target itself when it has a port, else target:default_port, built in
// r.authority.
func (r *Router) withPort(target string) string {
	if hasPort(target) {
		return target
	}
	need := len(target) + 1 + len(r.defaultPort)
	if need > cap(r.authority) { // not a target the sync accepts; still answer right
		return target + ":" + r.defaultPort
	}
	b := r.authority[:need]
	n := copy(b, target)
	b[n] = ':'
	copy(b[n+1:], r.defaultPort)
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// hasPort works on validated targets only: host, host:port, [v6] or [v6]:port.
func hasPort(target string) bool {
	if target != "" && target[0] == '[' {
		return target[len(target)-1] != ']'
	}
	return strings.IndexByte(target, ':') >= 0
}

// request is what the router reads from a request's headers, each "" when absent.
type request struct {
	path, serverName, authority string
	hasPath                     bool
}

// readRequest picks :path, :authority and the server-name header out of the pairs,
// stopping once it has all three. The server-name header is a token, so it never
// starts with ':': a pseudo-header is compared with the two pseudo-header names only,
// any other with the server-name header only.
func readRequest(headers, serverNameHeader string) (request, error) {
	pr, err := abi.NewPairsReader(headers)
	if err != nil {
		return request{}, err
	}
	var req request
	var hasServerName, hasAuthority bool
	for key, value, ok := pr.Next(); ok; key, value, ok = pr.Next() {
		switch {
		case len(key) == 0:
			continue
		case key[0] != ':':
			if hasServerName || key != serverNameHeader {
				continue
			}
			req.serverName, hasServerName = value, true
		case key == ":path":
			if req.hasPath {
				continue
			}
			req.path, req.hasPath = value, true
		case key == ":authority":
			if hasAuthority {
				continue
			}
			req.authority, hasAuthority = value, true
		default:
			continue
		}
		if req.hasPath && hasAuthority && hasServerName {
			return req, nil
		}
	}
	return req, pr.Err()
}

// AppendReplyBody appends the JSON body of a rejection's local reply to dst. The
// configured header is a validated token and the server name, named only for
// UnknownServer, has passed validate.IsServerName, so neither needs escaping.
func (r *Router) AppendReplyBody(dst []byte, d *Decision) []byte {
	o := d.Outcome
	dst = append(append(append(dst, `{"error":"`...), o.Code()...), `","message":"`...)
	switch o {
	case MissingServerName:
		dst = append(append(append(dst, "The "...), r.header...), " header is required on this path; set it to the name of a registered server"...)
	case InvalidServerName:
		dst = append(append(append(dst, "The "...), r.header...), " header must be 1-100 characters of letters, digits, '.', '_' or '-'"...)
	case RoutesNotLoaded:
		dst = append(dst, "The route table has not been loaded from the registrar yet; retry in a second"...)
	case UnknownServer:
		dst = append(append(append(dst, "Server '"...), d.ServerName...), "' is not registered"...)
	case NoActiveTarget:
		dst = append(dst, "Every target of this server is draining or has weight 0; retry once one is active"...)
	}
	return append(dst, `"}`...)
}
