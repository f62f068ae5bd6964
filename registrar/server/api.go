package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"switchyard/internal/registrarapi"
	"switchyard/registrar/store"
)

// result is the body of every /api/ answer, in the Lua setup's shape (docs/origin.md)
// {"result": {"success": ..., "error": ..., ...}}; its tests decode the same type.
type result = registrarapi.Result

func writeResult(w http.ResponseWriter, code int, res result) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(registrarapi.Answer{Result: res})
}

func writeFailure(w http.ResponseWriter, code int, msg string) {
	writeResult(w, code, result{Error: msg})
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeFailure(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here; use "+allow)
}

// api holds what the /api/ handlers share.
type api struct {
	store      store.Store
	policy     Policy
	log        *slog.Logger
	health     *writeHealth
	maxServers int64
	proxies    *proxyRegistry
	importing  sync.Mutex // held by the one POST /api/import running (export.go)
}

// register is POST /api/servers/register, as the Lua setup answered it
// (docs/origin.md): create or update.
func (a *api) register(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, http.MethodPost)
		return
	}
	aw, err := parseApplyWait(r.URL.Query())
	if err != nil {
		writeFailure(w, http.StatusBadRequest, err.Error())
		return
	}
	sw, ok := a.readServerWrite(w, r, "", "host", "ipAddress", "serviceName")
	if !ok {
		return
	}
	a.put(w, r, sw, aw)
}

// list is GET /api/servers: the whole table, sorted by host, with its revision.
func (a *api) list(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, http.MethodGet)
		return
	}
	t := a.store.Current()
	servers := make([]registrarapi.Server, 0, t.Len())
	t.Ascend("", func(sv store.Server) bool {
		servers = append(servers, *serverViewOf(&sv))
		return true
	})
	rev := t.Revision()
	writeResult(w, http.StatusOK, result{Success: true, Revision: &rev, Servers: &servers})
}

// server is GET, PUT and DELETE /api/servers/{host}.
func (a *api) server(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("host")
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
	default:
		methodNotAllowed(w, r, "GET, PUT, DELETE")
		return
	}
	if err := checkServerName(name); err != nil {
		writeFailure(w, http.StatusBadRequest, err.Error()+" (in the path)")
		return
	}
	var aw applyWait
	if r.Method == http.MethodPut || r.Method == http.MethodDelete {
		var err error
		if aw, err = parseApplyWait(r.URL.Query()); err != nil {
			writeFailure(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		t := a.store.Current()
		sv, ok := t.Get(name)
		if !ok {
			writeFailure(w, http.StatusNotFound, "server '"+name+"' is not registered")
			return
		}
		rev := t.Revision()
		writeResult(w, http.StatusOK, result{Success: true, Revision: &rev, Server: serverViewOf(&sv)})
	case http.MethodPut:
		// "host" may be repeated in the body (a form may send the whole record), but
		// only with the name the path gives.
		sw, ok := a.readServerWrite(w, r, name, "ipAddress", "serviceName", "host")
		if !ok {
			return
		}
		a.put(w, r, sw, aw)
	case http.MethodDelete:
		a.finishWrite(w, r, "delete", name, a.store.Write(store.Change{Name: name, MustExist: true}), aw)
	}
}

// notFound answers every other /api/ path in the result shape.
func (a *api) notFound(w http.ResponseWriter, r *http.Request) {
	writeFailure(w, http.StatusNotFound, "no such endpoint "+r.Method+" "+r.URL.Path+"; see /api/servers and /api/servers/register")
}

// readBodyOrFail reads the request body, answering the client itself (413, 400)
// and returning false when it cannot.
func (a *api) readBodyOrFail(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := readBody(w, r)
	if errors.Is(err, errTooLarge) {
		writeFailure(w, http.StatusRequestEntityTooLarge, err.Error()+"; a registration is a few hundred bytes")
		return nil, false
	}
	if err != nil {
		writeFailure(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return body, true
}

// serverWrite is a checked write of a whole server: its name, service name and
// target set.
type serverWrite struct {
	name, service string
	targets       []store.Target
	healthCheck   *store.HealthCheck
}

// readServerWrite reads and checks the body of a register (path "") or PUT (path:
// the name in the path) with the string fields given: host, serviceName, and
// ipAddress or targets (both: ipAddress must be the set's first active target). It
// answers the client itself and returns false when the write is refused.
func (a *api) readServerWrite(w http.ResponseWriter, r *http.Request, path string, fields ...string) (serverWrite, bool) {
	fail := func(err error) (serverWrite, bool) {
		var re *requestError
		if errors.As(err, &re) {
			writeFailure(w, re.code, re.msg)
		} else {
			writeFailure(w, http.StatusBadRequest, err.Error())
		}
		return serverWrite{}, false
	}
	allowed, err := allowNoActive(r.URL.Query())
	if err != nil {
		return fail(err)
	}
	body, ok := a.readBodyOrFail(w, r)
	if !ok {
		return serverWrite{}, false
	}
	got, raw, err := decodeObject(body, fields, []string{"targets", "healthCheck"})
	if err != nil {
		return fail(err)
	}
	hc, err := readHealthCheck(raw["healthCheck"])
	if err != nil {
		return fail(err)
	}
	rawTargets, hasTargets := raw["targets"]
	ip, hasIP := got["ipAddress"]
	var missing []string
	for _, f := range fields {
		if _, ok := got[f]; !ok && !(f == "host" && path != "") && !(f == "ipAddress" && hasTargets) {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fail(errors.New("missing field(s): " + strings.Join(missing, ", ") + "; host, serviceName and ipAddress (or targets) are required, host only when the path does not name the server"))
	}
	sw := serverWrite{name: got["host"], service: got["serviceName"], healthCheck: hc}
	if path != "" {
		if h, given := got["host"]; given && h != path {
			return fail(errors.New("host: the body says '" + truncate(h) + "' but the path says '" + path + "'; rename by deleting and registering again"))
		}
		sw.name = path
	}
	if err := checkServerName(sw.name); err != nil {
		return fail(err)
	}
	if hasIP {
		if err := checkTarget(ip, a.policy); err != nil {
			return fail(err)
		}
	}
	if err := checkServiceName(sw.service); err != nil {
		return fail(err)
	}
	if !hasTargets {
		sw.targets = []store.Target{{Address: ip, Weight: 1, State: store.StateActive}}
		return sw, true
	}
	if sw.targets, err = a.readTargets(rawTargets); err != nil {
		return fail(err)
	}
	if first := store.FirstActive(sw.targets); hasIP && ip != first {
		return fail(fieldErr("ipAddress", fmt.Errorf("'%s' is not the first active target of targets ('%s'); send ipAddress equal to it, or targets alone", truncate(ip), first)))
	}
	if err := checkActive(sw.targets, allowed); err != nil {
		return fail(err)
	}
	return sw, true
}

// put sets a whole server, keeping the health of targets it already had while it
// stays health-checked.
func (a *api) put(w http.ResponseWriter, r *http.Request, sw serverWrite, aw applyWait) {
	out := a.store.Write(store.Change{Name: sw.name, Update: setServer(sw)})
	a.finishWrite(w, r, "set", sw.name, out, aw)
}

// finishWrite answers a write of one server: the store's error, or 200 with the
// revision, whether it changed anything and the server as it stands (removed, for a
// delete), after waiting for the proxies with wait=applied.
func (a *api) finishWrite(w http.ResponseWriter, r *http.Request, action, name string, out store.WriteResult, aw applyWait) {
	a.health.observe(out.Err)
	if out.Err != nil {
		a.writeStoreError(w, name, out.Err)
		return
	}
	if out.Changed {
		a.audit(r, action, name, out.Old[0], out.New[0], out.Revision)
	}
	shown := out.New[0]
	if action == "delete" {
		shown = out.Old[0]
	}
	res := result{Success: true, Revision: &out.Revision, Changed: &out.Changed, Server: serverViewOf(shown)}
	a.awaitApplied(r, aw, out.Revision, &res)
	writeResult(w, http.StatusOK, res)
}

func (a *api) writeStoreError(w http.ResponseWriter, name string, err error) {
	var re *requestError
	switch {
	case errors.As(err, &re):
		writeFailure(w, re.code, re.msg)
	case errors.Is(err, store.ErrNotFound):
		writeFailure(w, http.StatusNotFound, "server '"+name+"' is not registered")
	case errors.Is(err, store.ErrClosed):
		writeFailure(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, store.ErrTooLarge):
		writeFailure(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, store.ErrUnavailable):
		a.log.Warn("write failed: the store is unavailable", "host", name, "err", err)
		writeFailure(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, store.ErrTableFull):
		writeFailure(w, http.StatusInsufficientStorage, "the registrar holds its maximum of "+strconv.FormatInt(a.maxServers, 10)+
			" servers (-max-servers); nothing was changed: delete servers no longer used, or raise -max-servers")
	default:
		// The cause (with the data path) goes to the log only.
		a.log.Error("write failed", "host", name, "err", err)
		writeFailure(w, http.StatusInternalServerError, saveFailure(err)+", nothing was changed; check the registrar's disk and logs, then retry")
	}
}

// audit writes one log line per change: what changed and who asked for it.
// X-Forwarded-For is logged as the client's claim, next to the real peer address.
func (a *api) audit(r *http.Request, action, name string, old, cur *store.Server, rev uint64) {
	attrs := []any{"action", action, "host", name, "revision", rev, "remote", r.RemoteAddr}
	if old != nil {
		attrs = append(attrs, "old", old.Route(), "oldServiceName", old.Service)
	} else {
		attrs = append(attrs, "old", "")
	}
	if cur != nil {
		attrs = append(attrs, "new", cur.Route(), "serviceName", cur.Service)
	} else {
		attrs = append(attrs, "new", "")
	}
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		attrs = append(attrs, "forwardedFor", xff)
	}
	a.log.Info("audit", attrs...)
}
