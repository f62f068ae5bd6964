package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"switchyard/internal/registrarapi"
	"switchyard/registrar/store"
)

// maxImportBody is the largest body POST /api/import accepts: a table of about two
// million servers in the export's form.
const maxImportBody = 256 << 20

// export is GET /api/export: the whole table at one revision, the supported online
// backup, as one JSON object in the data file's form
//
//	{"revision": 7, "lineage": "9f…", "servers": [
//	{"host": "web-1", "ipAddress": "10.1.2.3:8080", "serviceName": "logs", "updatedAt": "…"},
//	…]}
//
// one server per line in byte order of the name, each in the shape GET /api/servers
// gives it (its targets with their health). POST /api/import takes it back.
func (a *api) export(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, http.MethodGet)
		return
	}
	t := a.store.Current()
	lineage := a.store.Lineage()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", `attachment; filename="switchyard-`+strconv.FormatUint(t.Revision(), 10)+`.json"`)
	if r.Method == http.MethodHead {
		return
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, "{\"revision\": %d, \"lineage\": %q, \"servers\": [", t.Revision(), lineage)
	first := true
	t.Ascend("", func(sv store.Server) bool {
		b, err := json.Marshal(serverViewOf(&sv))
		if err != nil {
			return false
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		bw.WriteByte('\n')
		_, err = bw.Write(b)
		return err == nil
	})
	bw.WriteString("\n]}\n")
	bw.Flush()
}

// exportForm is the export's object as import reads it; revision and lineage are
// the exported table's and are not used (an import starts a history of its own).
type exportForm struct {
	Revision *uint64            `json:"revision"`
	Lineage  *string            `json:"lineage"`
	Servers  *[]json.RawMessage `json:"servers"`
}

// importTable is POST /api/import: the body (the export's form, or the seed's flat
// {"name": "address"} map) becomes the whole table in one write that starts a new
// lineage, so that every proxy takes the table whole. Every entry is checked like a
// registration; the first bad one is named and nothing changes. One import runs at a
// time (each may hold a whole table in memory); another meanwhile is answered 409.
func (a *api) importTable(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, http.MethodPost)
		return
	}
	if !a.importing.TryLock() {
		writeFailure(w, http.StatusConflict, "another import is running; retry once it is done")
		return
	}
	defer a.importing.Unlock()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxImportBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeFailure(w, http.StatusRequestEntityTooLarge, "the import is larger than "+strconv.Itoa(maxImportBody>>20)+" MiB; nothing was changed")
		return
	}
	if err != nil {
		writeFailure(w, http.StatusBadRequest, "could not read the request body: "+err.Error())
		return
	}
	servers, err := a.parseImport(body)
	if err != nil {
		writeFailure(w, http.StatusBadRequest, err.Error()+"; nothing was changed")
		return
	}
	out := a.store.Replace(servers)
	a.health.observe(out.Err)
	if out.Err != nil {
		if errors.Is(out.Err, store.ErrNotSaved) || errors.Is(out.Err, store.ErrTableFull) || errors.Is(out.Err, store.ErrClosed) || errors.Is(out.Err, store.ErrUnavailable) {
			a.writeStoreError(w, "", out.Err)
			return
		}
		writeFailure(w, http.StatusBadRequest, out.Err.Error()+"; nothing was changed")
		return
	}
	n := len(servers)
	a.log.Info("audit", "action", "import", "servers", n, "revision", out.Revision, "lineage", a.store.Lineage(), "remote", r.RemoteAddr)
	writeResult(w, http.StatusOK, result{Success: true, Revision: &out.Revision, Changed: &out.Changed, Lineage: a.store.Lineage(), Imported: &n})
}

// parseImport reads an import body: an object with "servers" as an array is the
// export's form, any other object the seed's map of names to addresses.
func (a *api) parseImport(body []byte) ([]store.Server, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, fmt.Errorf("the import must be a JSON object: the export's {\"revision\", \"lineage\", \"servers\": [...]} or a map of names to addresses such as {\"web-1\": \"10.1.2.3:8080\"} (%v)", invalidJSON(err))
	}
	if raw, ok := probe["servers"]; !ok || len(bytes.TrimSpace(raw)) == 0 || bytes.TrimSpace(raw)[0] != '[' {
		return a.parseImportMap(body)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var f exportForm
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("the import is not in the export's form: %v", invalidJSON(err))
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: unexpected data after the object")
	}
	servers := make([]store.Server, 0, len(*f.Servers))
	seen := make(map[string]bool, len(*f.Servers))
	for i, raw := range *f.Servers {
		sv, err := a.importedServer(raw)
		if err != nil {
			return nil, fmt.Errorf("servers[%d]: %v", i, err)
		}
		if seen[sv.Name] {
			return nil, fmt.Errorf("servers[%d]: host %q appears more than once", i, sv.Name)
		}
		seen[sv.Name] = true
		servers = append(servers, sv)
	}
	return servers, nil
}

// importedServer reads one server of the export's form, as GET /api/servers shows it,
// and checks it like a registration: host and serviceName; targets (each address
// against the target policy, weight, state; health is the registrar's own check and
// is not taken), or ipAddress alone; healthCheck as a write reads it; updatedAt is
// kept. A set without an active target is taken as exported.
func (a *api) importedServer(raw json.RawMessage) (store.Server, error) {
	var in registrarapi.Server
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&in); err != nil {
		return store.Server{}, invalidJSON(err)
	}
	var hcRaw struct {
		HealthCheck json.RawMessage `json:"healthCheck"`
	}
	json.Unmarshal(raw, &hcRaw) // it decoded strictly above
	hc, err := readHealthCheck(hcRaw.HealthCheck)
	if err != nil {
		return store.Server{}, err
	}
	if err := checkServerName(in.Name); err != nil {
		return store.Server{}, err
	}
	if err := checkServiceName(in.Service); err != nil {
		return store.Server{}, err
	}
	var ts []store.Target
	if in.Targets == nil {
		if err := checkTarget(in.Target, a.policy); err != nil {
			return store.Server{}, err
		}
		ts = []store.Target{{Address: in.Target, Weight: 1, State: store.StateActive}}
	}
	for i, t := range in.Targets {
		if err := checkAddress(t.Address, a.policy, fmt.Sprintf("targets[%d].address", i)); err != nil {
			return store.Server{}, err
		}
		ts = append(ts, store.Target{Address: t.Address, Weight: t.Weight, State: t.State})
	}
	sv := store.NewServer(in.Name, in.Service, ts)
	if in.Target != "" && in.Targets != nil && in.Target != sv.Target {
		return store.Server{}, fieldErr("ipAddress", fmt.Errorf("'%s' is not the first active target of targets ('%s'); send ipAddress equal to it, or targets alone", truncate(in.Target), sv.Target))
	}
	if err := store.CheckTargets(sv); err != nil {
		return store.Server{}, err
	}
	sv.HealthCheck, sv.UpdatedAt = hc, in.UpdatedAt
	return sv, nil
}

// parseImportMap reads the seed's map form; an entry whose name is registered with
// the same address keeps its service name, the others get importedServiceName.
func (a *api) parseImportMap(body []byte) ([]store.Server, error) {
	entries, err := parseSeedMapping(body)
	if err != nil {
		return nil, err
	}
	cur := a.store.Current()
	servers := make([]store.Server, 0, len(entries))
	for _, e := range entries {
		if err := checkServerName(e.name); err != nil {
			return nil, fmt.Errorf("entry %q: %v", e.name, err)
		}
		if err := checkTarget(e.target, a.policy); err != nil {
			return nil, fmt.Errorf("entry %q: %v", e.name, err)
		}
		service := importedServiceName
		if old, ok := cur.Get(e.name); ok && old.Target == e.target {
			service = old.Service
		}
		servers = append(servers, store.NewServer(e.name, service, []store.Target{{Address: e.target, Weight: 1, State: store.StateActive}}))
	}
	return servers, nil
}
