package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"unicode/utf8"

	"switchyard/internal/registrarapi"
	"switchyard/registrar/store"
)

// A server's targets in the API (README, "Several targets per name"):
//
//   - POST /api/servers/register and PUT /api/servers/{host} take an optional
//     "targets" array that replaces the whole set in one write; "ipAddress" alone is
//     one active target of weight 1; given together, ipAddress must be the set's first
//     active target.
//   - POST /api/servers/{host}/targets adds one target; PATCH and DELETE
//     /api/servers/{host}/targets/{address} (the address URL-escaped) change or
//     remove one, leaving the others as they are.
//   - A set in which no target is active with a weight above 0 makes the proxies answer
//     503 no_active_target; a write that leaves such a set is refused unless it says
//     allowNoActive=true.
//   - Every answer shows the targets, each with its health ("up", or "down" once the
//     registrar's active health check finds it so; a write never sets it).

// Health values of a target in answers.
const (
	healthUp   = "up"
	healthDown = "down"
)

// serverViewOf is sv as /api/ answers show it (nil for nil): its targets always,
// each with its health.
func serverViewOf(sv *store.Server) *registrarapi.Server {
	if sv == nil {
		return nil
	}
	v := &registrarapi.Server{Name: sv.Name, Target: sv.Target, Service: sv.Service, UpdatedAt: sv.UpdatedAt}
	if hc := sv.HealthCheck; hc != nil {
		v.HealthCheck = &registrarapi.HealthCheck{Path: hc.Path, Interval: hc.Interval.String(), Timeout: hc.Timeout.String(),
			HealthyThreshold: hc.HealthyThreshold, UnhealthyThreshold: hc.UnhealthyThreshold}
	}
	for _, t := range sv.TargetList() {
		h := healthUp
		if t.Down {
			h = healthDown
		}
		v.Targets = append(v.Targets, registrarapi.Target{Address: t.Address, Weight: t.Weight, State: t.State, Health: h})
	}
	return v
}

// requestError is a refusal a write's Update makes inside the store: the status and
// message the client gets.
type requestError struct {
	code int
	msg  string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(err error) error { return &requestError{http.StatusBadRequest, err.Error()} }

// allowNoActive reads the allowNoActive query parameter: true lets a write leave a
// set with no active target of weight above 0.
func allowNoActive(q url.Values) (bool, error) {
	if !q.Has("allowNoActive") {
		return false, nil
	}
	if v := q.Get("allowNoActive"); v != "true" {
		return false, errors.New("allowNoActive: the only value is \"true\" (let the write leave no active target, so the proxies answer 503 no_active_target); got " + strconv.Quote(truncate(v)))
	}
	return true, nil
}

// checkActive refuses a set without a target that takes requests unless allowed.
func checkActive(ts []store.Target, allowed bool) error {
	if allowed || store.HasActive(ts) {
		return nil
	}
	return fieldErr("targets", errors.New("no target is active with a weight above 0, so the proxies would answer every request 503 no_active_target; "+
		"make one active with a weight of 1 or more, or send the write with ?allowNoActive=true if that is what you want"))
}

// readTarget reads one target object strictly, as decodeObject reads a body (field
// names the object in errors, e.g. "targets[2]"): address a string, weight a whole
// number 0–100, state "active" or "draining"; nothing else, each once. Members absent
// are nil.
func readTarget(raw json.RawMessage, field string) (address *string, weight *int, state *string, err error) {
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] != '{' {
		return nil, nil, nil, fmt.Errorf(`%s: must be a JSON object such as {"address": "10.1.2.3:8080", "weight": 1, "state": "active"}`, field)
	}
	got, raws, err := decodeObject(raw, []string{"address", "state"}, []string{"weight"})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %v", field, err)
	}
	if a, ok := got["address"]; ok {
		address = &a
	}
	if st, ok := got["state"]; ok {
		if st != store.StateActive && st != store.StateDraining {
			return nil, nil, nil, fmt.Errorf("%s.state: must be %q or %q (got %q)", field, store.StateActive, store.StateDraining, truncate(st))
		}
		state = &st
	}
	if w, ok := raws["weight"]; ok {
		n, err := strconv.Atoi(string(w))
		if err != nil || n < 0 || n > store.MaxWeight {
			return nil, nil, nil, fmt.Errorf("%s.weight: must be a whole number from 0 to %d (got %s)", field, store.MaxWeight, truncate(string(w)))
		}
		weight = &n
	}
	return address, weight, state, nil
}

// newTarget reads a whole target (address required; weight 1 and state active when
// absent) and checks its address as ipAddress is checked.
func (a *api) newTarget(raw json.RawMessage, field string) (store.Target, error) {
	addr, weight, state, err := readTarget(raw, field)
	if err != nil {
		return store.Target{}, badRequest(err)
	}
	if addr == nil {
		return store.Target{}, badRequest(fmt.Errorf("%s.address: missing; a target needs an address", field))
	}
	if err := checkAddress(*addr, a.policy, field+".address"); err != nil {
		return store.Target{}, badRequest(err)
	}
	t := store.Target{Address: *addr, Weight: 1, State: store.StateActive}
	if weight != nil {
		t.Weight = *weight
	}
	if state != nil {
		t.State = *state
	}
	return t, nil
}

// readTargets reads the "targets" member of a write: 1 to 64 targets, addresses
// distinct.
func (a *api) readTargets(raw json.RawMessage) ([]store.Target, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		return nil, badRequest(fieldErr("targets", errors.New(`must be an array of targets such as [{"address": "10.1.2.3:8080", "weight": 1, "state": "active"}]`)))
	}
	if len(list) == 0 || len(list) > store.MaxTargets {
		return nil, badRequest(fieldErr("targets", fmt.Errorf("%d targets; a server has 1 to %d", len(list), store.MaxTargets)))
	}
	ts := make([]store.Target, 0, len(list))
	for i, raw := range list {
		field := "targets[" + strconv.Itoa(i) + "]"
		t, err := a.newTarget(raw, field)
		if err != nil {
			return nil, err
		}
		if j := slices.IndexFunc(ts, func(u store.Target) bool { return u.Address == t.Address }); j >= 0 {
			return nil, badRequest(fmt.Errorf("%s.address: %q is also targets[%d]; give each address once", field, t.Address, j))
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// keepHealth gives the targets of a write the health the server's current targets of
// the same address have: a write says what to route to, the health check what is up.
// A write that takes the server's health check away makes every target up, since no
// check would ever do so.
func keepHealth(ts []store.Target, old *store.Server, checked bool) []store.Target {
	if old == nil || (old.HealthCheck != nil && !checked) {
		return ts
	}
	prev := old.TargetList()
	out := slices.Clone(ts)
	for i := range out {
		if j := slices.IndexFunc(prev, func(u store.Target) bool { return u.Address == out[i].Address }); j >= 0 {
			out[i].Down = prev[j].Down
		}
	}
	return out
}

// setServer is the Update of a write that sets a whole server: its target set and
// health check.
func setServer(w serverWrite) func(*store.Server) (*store.Server, error) {
	return func(old *store.Server) (*store.Server, error) {
		sv := store.NewServer(w.name, w.service, keepHealth(w.targets, old, w.healthCheck != nil))
		sv.HealthCheck = w.healthCheck
		return &sv, nil
	}
}

// targets serves /api/servers/{host}/targets (POST: add one target).
func (a *api) targets(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, http.MethodPost)
		return
	}
	a.changeTarget(w, r, "", func(raw json.RawMessage, allowed bool) (func(*store.Server) (*store.Server, error), error) {
		t, err := a.newTarget(raw, "target")
		if err != nil {
			return nil, err
		}
		return func(old *store.Server) (*store.Server, error) {
			ts := old.TargetList()
			if slices.ContainsFunc(ts, func(u store.Target) bool { return u.Address == t.Address }) {
				return nil, &requestError{http.StatusConflict, "address: '" + t.Address + "' is already a target of '" + old.Name + "'; change it with PATCH /api/servers/" + old.Name + "/targets/" + url.PathEscape(t.Address)}
			}
			if len(ts) >= store.MaxTargets {
				return nil, badRequest(fieldErr("targets", fmt.Errorf("'%s' has %d targets already, the most a server may have", old.Name, len(ts))))
			}
			return withTargets(old, append(slices.Clone(ts), t), allowed)
		}, nil
	})
}

// target serves /api/servers/{host}/targets/{address}: PATCH changes the target's
// weight and state, DELETE removes it.
func (a *api) target(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPatch && r.Method != http.MethodDelete {
		methodNotAllowed(w, r, "PATCH, DELETE")
		return
	}
	address := r.PathValue("address")
	find := func(old *store.Server) ([]store.Target, int, error) {
		ts := old.TargetList()
		i := slices.IndexFunc(ts, func(u store.Target) bool { return u.Address == address })
		if i < 0 {
			return nil, 0, &requestError{http.StatusNotFound, "'" + truncate(address) + "' is not a target of '" + old.Name + "'; its targets are listed by GET /api/servers/" + old.Name}
		}
		return slices.Clone(ts), i, nil
	}
	a.changeTarget(w, r, address, func(raw json.RawMessage, allowed bool) (func(*store.Server) (*store.Server, error), error) {
		if r.Method == http.MethodDelete {
			return func(old *store.Server) (*store.Server, error) {
				ts, i, err := find(old)
				if err != nil {
					return nil, err
				}
				if len(ts) == 1 {
					return nil, badRequest(fieldErr("targets", fmt.Errorf("'%s' is the only target of '%s'; a server has at least one: delete the server (DELETE /api/servers/%s) or add another target first", address, old.Name, old.Name)))
				}
				return withTargets(old, slices.Delete(ts, i, i+1), allowed)
			}, nil
		}
		addr, weight, state, err := readTarget(raw, "target")
		if err != nil {
			return nil, badRequest(err)
		}
		if addr != nil && *addr != address {
			return nil, badRequest(fmt.Errorf("target.address: the body says '%s' but the path says '%s'; to move a target, add the new address and delete the old", truncate(*addr), truncate(address)))
		}
		if weight == nil && state == nil {
			return nil, badRequest(errors.New(`target: nothing to change; send "weight", "state" or both, e.g. {"weight": 0} or {"state": "draining"}`))
		}
		return func(old *store.Server) (*store.Server, error) {
			ts, i, err := find(old)
			if err != nil {
				return nil, err
			}
			if weight != nil {
				ts[i].Weight = *weight
			}
			if state != nil {
				ts[i].State = *state
			}
			return withTargets(old, ts, allowed)
		}, nil
	})
}

// withTargets is old with the target set ts, unless that leaves no active target and
// the write did not allow it.
func withTargets(old *store.Server, ts []store.Target, allowed bool) (*store.Server, error) {
	if err := checkActive(ts, allowed); err != nil {
		return nil, badRequest(err)
	}
	sv := store.NewServer(old.Name, old.Service, ts)
	sv.HealthCheck = old.HealthCheck
	return &sv, nil
}

// changeTarget runs a write of one target of the server in the path: it reads the
// query (wait, allowNoActive) and the body (none for DELETE), builds the write's
// Update with plan, and answers as PUT does; 404 when the server is not registered.
func (a *api) changeTarget(w http.ResponseWriter, r *http.Request, address string,
	plan func(body json.RawMessage, allowed bool) (func(*store.Server) (*store.Server, error), error)) {
	name := r.PathValue("host")
	if err := checkServerName(name); err != nil {
		writeFailure(w, http.StatusBadRequest, err.Error()+" (in the path)")
		return
	}
	q := r.URL.Query()
	aw, err := parseApplyWait(q)
	if err != nil {
		writeFailure(w, http.StatusBadRequest, err.Error())
		return
	}
	allowed, err := allowNoActive(q)
	if err != nil {
		writeFailure(w, http.StatusBadRequest, err.Error())
		return
	}
	var body json.RawMessage
	if r.Method != http.MethodDelete {
		b, ok := a.readBodyOrFail(w, r)
		if !ok {
			return
		}
		if len(bytes.TrimSpace(b)) == 0 || !utf8.Valid(b) {
			writeFailure(w, http.StatusBadRequest, `request body is empty or not UTF-8; send a JSON object such as {"address": "10.1.2.3:8080", "weight": 1, "state": "active"}`)
			return
		}
		body = b
	}
	update, err := plan(body, allowed)
	if err != nil {
		a.writeStoreError(w, name, err)
		return
	}
	out := a.store.Write(store.Change{Name: name, Update: func(old *store.Server) (*store.Server, error) {
		if old == nil {
			return nil, store.ErrNotFound
		}
		return update(old)
	}})
	a.finishWrite(w, r, "set", name, out, aw)
}
