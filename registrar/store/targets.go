package store

import (
	"fmt"
	"slices"

	"switchyard/internal/contract"
	"switchyard/internal/validate"
)

// Target states: an active target takes new requests (when its weight is above 0), a
// draining one takes none while requests already sent to it finish.
const (
	StateActive   = "active"
	StateDraining = "draining"
)

// Target is one address a server name sends requests to. Down is set by the
// registrar's active health check, never by a write of the API.
type Target struct {
	Address string `json:"address"`
	Weight  int    `json:"weight"`
	State   string `json:"state"`
	Down    bool   `json:"down,omitempty"`
}

// routable: the target may take new requests when healthy.
func (t Target) routable() bool { return t.State == StateActive && t.Weight > 0 }

// FirstActive is the address a server's ipAddress shows: its first active target
// with weight above 0 (health aside, so a health check never changes what a client
// registered), else its first target.
func FirstActive(ts []Target) string {
	for _, t := range ts {
		if t.routable() {
			return t.Address
		}
	}
	return ts[0].Address
}

// NewServer returns the server name serving service from targets, in the form the
// stores keep: Target is the first active target, and Targets is nil when the set is
// exactly one active, healthy target of weight 1 (the form of a server registered
// with ipAddress alone, so such servers are stored exactly as before target sets).
// targets must pass CheckTargets; NewServer keeps the slice.
func NewServer(name, service string, targets []Target) Server {
	sv := Server{Name: name, Service: service, Target: FirstActive(targets), Targets: targets}
	if len(targets) == 1 && targets[0] == (Target{Address: targets[0].Address, Weight: 1, State: StateActive}) {
		sv.Targets = nil
	}
	return sv
}

// TargetList is the server's targets: Targets, or the one target Target stands for.
// The slice may be shared with the table: copy it before changing it.
func (sv Server) TargetList() []Target {
	if sv.Targets != nil {
		return sv.Targets
	}
	return []Target{{Address: sv.Target, Weight: 1, State: StateActive}}
}

// Route is the server's target-set string (internal/contract): what version 3 of the
// sync protocol sends and the filter keeps per name. A server of one active, healthy
// target is its plain address.
func (sv Server) Route() string {
	if sv.Targets == nil {
		return sv.Target
	}
	if len(sv.Targets) == 1 && sv.Targets[0].routable() && !sv.Targets[0].Down {
		return sv.Targets[0].Address
	}
	var buf [contract.MaxTargets]contract.Target
	cts := buf[:0]
	for _, t := range sv.Targets {
		cts = append(cts, contract.Target{Address: t.Address, Weight: t.Weight, Draining: t.State == StateDraining, Down: t.Down})
	}
	return string(contract.AppendTargetSet(make([]byte, 0, 16*len(cts)), cts))
}

// sameContent says whether a and b register the same thing (name and updatedAt
// aside): a write of the same content changes nothing.
func sameContent(a, b Server) bool {
	return a.Target == b.Target && a.Service == b.Service && slices.Equal(a.Targets, b.Targets) &&
		(a.HealthCheck == nil) == (b.HealthCheck == nil) && (a.HealthCheck == nil || *a.HealthCheck == *b.HealthCheck)
}

// SameContent is sameContent for stores outside this package.
func SameContent(a, b Server) bool { return sameContent(a, b) }

// MaxTargets is how many targets one server may have.
const MaxTargets = contract.MaxTargets

// MaxWeight is the highest weight of a target.
const MaxWeight = contract.MaxWeight

// CheckTargets checks a stored server's targets as a write would have made them:
// with Targets nil, Target is a valid address; else 1 to MaxTargets targets with valid,
// distinct addresses, weights 0 to MaxWeight, a known state, and Target their first
// active one. It does not apply the target policy (see the server's write rules).
func CheckTargets(sv Server) error {
	if sv.Targets == nil {
		if _, err := validate.ParseAddress(sv.Target); err != nil {
			return fmt.Errorf("ipAddress: %v", err)
		}
		return nil
	}
	if len(sv.Targets) == 0 || len(sv.Targets) > MaxTargets {
		return fmt.Errorf("targets: %d targets; a server has 1 to %d", len(sv.Targets), MaxTargets)
	}
	for i, t := range sv.Targets {
		if _, err := validate.ParseAddress(t.Address); err != nil {
			return fmt.Errorf("targets[%d].address: %v", i, err)
		}
		if t.Weight < 0 || t.Weight > MaxWeight {
			return fmt.Errorf("targets[%d].weight: %d is not 0 to %d", i, t.Weight, MaxWeight)
		}
		if t.State != StateActive && t.State != StateDraining {
			return fmt.Errorf("targets[%d].state: %q is not %q or %q", i, t.State, StateActive, StateDraining)
		}
		for _, u := range sv.Targets[:i] {
			if u.Address == t.Address {
				return fmt.Errorf("targets[%d].address: %q appears twice", i, t.Address)
			}
		}
	}
	if want := FirstActive(sv.Targets); sv.Target != want {
		return fmt.Errorf("ipAddress %q is not the first active target %q", sv.Target, want)
	}
	return nil
}

// HasActive says whether any target may take new requests (active, weight above 0):
// without one the proxies answer every request 503 no_active_target.
func HasActive(ts []Target) bool { return slices.ContainsFunc(ts, Target.routable) }
