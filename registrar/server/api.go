package server

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

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
	fields, ok := a.readFields(w, r, "host", "ipAddress", "serviceName")
	if !ok {
		return
	}
	if err := a.check(fields["host"], fields["ipAddress"], fields["serviceName"]); err != nil {
		writeFailure(w, http.StatusBadRequest, err.Error())
		return
	}
	a.put(w, r, fields["host"], fields["ipAddress"], fields["serviceName"], aw)
}

// list is GET /api/servers: the whole table, sorted by host, with its revision.
func (a *api) list(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, http.MethodGet)
		return
	}
	t := a.store.Current()
	servers := make([]store.Server, 0, t.Len())
	t.Ascend("", func(sv store.Server) bool {
		servers = append(servers, sv)
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
		writeResult(w, http.StatusOK, result{Success: true, Revision: &rev, Server: &sv})
	case http.MethodPut:
		// "host" may be repeated in the body (a form may send the whole record), but
		// only with the name the path gives.
		fields, ok := a.readFields(w, r, "ipAddress", "serviceName", "host")
		if !ok {
			return
		}
		if h, given := fields["host"]; given && h != name {
			writeFailure(w, http.StatusBadRequest, "host: the body says '"+truncate(h)+"' but the path says '"+name+"'; rename by deleting and registering again")
			return
		}
		fields["host"] = name
		if err := a.check(name, fields["ipAddress"], fields["serviceName"]); err != nil {
			writeFailure(w, http.StatusBadRequest, err.Error())
			return
		}
		a.put(w, r, name, fields["ipAddress"], fields["serviceName"], aw)
	case http.MethodDelete:
		out := a.store.Write(store.Change{Name: name, MustExist: true})
		a.health.observe(out.Err)
		if out.Err != nil {
			a.writeStoreError(w, name, out.Err)
			return
		}
		a.audit(r, "delete", name, out.Old[0], nil, out.Revision)
		res := result{Success: true, Revision: &out.Revision, Changed: &out.Changed, Server: out.Old[0]}
		a.awaitApplied(r, aw, out.Revision, &res)
		writeResult(w, http.StatusOK, res)
	}
}

// notFound answers every other /api/ path in the result shape.
func (a *api) notFound(w http.ResponseWriter, r *http.Request) {
	writeFailure(w, http.StatusNotFound, "no such endpoint "+r.Method+" "+r.URL.Path+"; see /api/servers and /api/servers/register")
}

// readFields reads the body as a JSON object of the given string fields; it answers
// the client itself and returns false when the body is refused. Every field but a
// trailing optional "host" of PUT is required.
func (a *api) readFields(w http.ResponseWriter, r *http.Request, fields ...string) (map[string]string, bool) {
	body, err := readBody(w, r)
	if errors.Is(err, errTooLarge) {
		writeFailure(w, http.StatusRequestEntityTooLarge, err.Error()+"; a registration is a few hundred bytes")
		return nil, false
	}
	if err != nil {
		writeFailure(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	got, err := decodeStringObject(body, fields...)
	if err != nil {
		writeFailure(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	required := fields
	if r.Method == http.MethodPut {
		required = fields[:2]
	}
	var missing []string
	for _, f := range required {
		if _, ok := got[f]; !ok {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		writeFailure(w, http.StatusBadRequest, "missing field(s): "+strings.Join(missing, ", ")+"; "+strings.Join(required, ", ")+" are required")
		return nil, false
	}
	return got, true
}

func (a *api) check(name, target, service string) error {
	if err := checkServerName(name); err != nil {
		return err
	}
	if err := checkTarget(target, a.policy); err != nil {
		return err
	}
	return checkServiceName(service)
}

func (a *api) put(w http.ResponseWriter, r *http.Request, name, target, service string, aw applyWait) {
	out := a.store.Write(store.Change{Name: name, Server: &store.Server{Name: name, Target: target, Service: service}})
	a.health.observe(out.Err)
	if out.Err != nil {
		a.writeStoreError(w, name, out.Err)
		return
	}
	if out.Changed {
		a.audit(r, "set", name, out.Old[0], out.New[0], out.Revision)
	}
	res := result{Success: true, Revision: &out.Revision, Changed: &out.Changed, Server: out.New[0]}
	a.awaitApplied(r, aw, out.Revision, &res)
	writeResult(w, http.StatusOK, res)
}

func (a *api) writeStoreError(w http.ResponseWriter, name string, err error) {
	switch {
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
		attrs = append(attrs, "old", old.Target, "oldServiceName", old.Service)
	} else {
		attrs = append(attrs, "old", "")
	}
	if cur != nil {
		attrs = append(attrs, "new", cur.Target, "serviceName", cur.Service)
	} else {
		attrs = append(attrs, "new", "")
	}
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		attrs = append(attrs, "forwardedFor", xff)
	}
	a.log.Info("audit", attrs...)
}
