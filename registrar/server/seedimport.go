package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"unicode/utf8"

	"switchyard/registrar/store"
)

// importedServiceName marks servers that came from the Lua setup's mapping file, which
// had no service names.
const importedServiceName = "imported"

// ImportReport says what an import did.
type ImportReport struct {
	Entries  int    // entries in the file
	Changed  bool   // whether the table changed
	Revision uint64 // revision after the import
}

// Import is the one-shot -import: it loads the Lua setup's server_mapping.json
// (docs/origin.md) at path
// into the store as one all-or-nothing write, with the server's -allow-cidr policy.
// An etcd store takes at most --max-txn-ops operations in one transaction (128 by
// default); a larger import is written there in parts of importPart entries, each
// all-or-nothing. A failure part-way leaves the earlier parts written and says so;
// running the same -import again finishes it (entries already there change nothing).
func (s *Server) Import(path string) (ImportReport, error) {
	return importSeed(s.store, path, s.cfg.Policy)
}

// importSeed loads the Lua setup's server_mapping.json ({"name": "ip", ...}) into store as
// one all-or-nothing write. Every entry is validated like a registration (name,
// address, policy); the first bad entry is named and nothing is written. Entries
// already registered with the same address keep their service name and updatedAt.
func importSeed(st store.Store, path string, policy Policy) (ImportReport, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ImportReport{}, fmt.Errorf("-import: %v", err)
	}
	entries, err := parseSeedMapping(raw)
	if err != nil {
		return ImportReport{}, fmt.Errorf("-import %s: %v; nothing was imported", path, err)
	}
	cur := st.Current()
	var changes []store.Change
	for _, e := range entries {
		if err := checkServerName(e.name); err != nil {
			return ImportReport{}, fmt.Errorf("-import %s: entry %q: %v; nothing was imported", path, e.name, err)
		}
		if err := checkTarget(e.target, policy); err != nil {
			return ImportReport{}, fmt.Errorf("-import %s: entry %q: %v; nothing was imported", path, e.name, err)
		}
		service := importedServiceName
		if old, ok := cur.Get(e.name); ok && old.Target == e.target {
			service = old.Service
		}
		changes = append(changes, store.Change{Name: e.name, Server: &store.Server{Name: e.name, Target: e.target, Service: service}})
	}
	rep := ImportReport{Entries: len(entries), Revision: cur.Revision()}
	if len(changes) == 0 {
		return rep, nil
	}
	out := st.Write(changes...)
	if errors.Is(out.Err, store.ErrTooLarge) {
		return importInParts(st, path, changes, rep)
	}
	if out.Err != nil {
		return ImportReport{}, fmt.Errorf("-import %s: %v", path, out.Err)
	}
	rep.Changed, rep.Revision = out.Changed, out.Revision
	return rep, nil
}

// importPart is the number of entries in one part of an import too large for one
// etcd transaction: under etcd's default --max-txn-ops of 128, with room for the
// store's own bookkeeping keys.
const importPart = 100

func importInParts(st store.Store, path string, changes []store.Change, rep ImportReport) (ImportReport, error) {
	for i := 0; i < len(changes); i += importPart {
		part := changes[i:min(i+importPart, len(changes))]
		out := st.Write(part...)
		if out.Err != nil {
			return ImportReport{}, fmt.Errorf("-import %s: entries %d–%d of %d: %v; the %d entries before them were imported; run the same -import again to finish", path, i+1, i+len(part), len(changes), out.Err, i)
		}
		rep.Changed = rep.Changed || out.Changed
		rep.Revision = out.Revision
	}
	return rep, nil
}

type seedEntry struct{ name, target string }

// parseSeedMapping reads a flat JSON object of string values, in file order,
// refusing duplicate names (the Lua router would have kept only the last one,
// silently).
func parseSeedMapping(raw []byte) ([]seedEntry, error) {
	if !utf8.Valid(raw) {
		return nil, errors.New("the file is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, invalidJSON(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New(`the file must be a JSON object of names to addresses, e.g. {"web-1": "10.1.2.3:8080"}`)
	}
	var out []seedEntry
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, invalidJSON(err)
		}
		name := tok.(string)
		if seen[name] {
			return nil, fmt.Errorf("entry %q appears more than once", name)
		}
		seen[name] = true
		tok, err = dec.Token()
		if err != nil {
			return nil, invalidJSON(err)
		}
		addr, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("entry %q: the address must be a JSON string", name)
		}
		out = append(out, seedEntry{name, addr})
	}
	if _, err := dec.Token(); err != nil {
		return nil, invalidJSON(err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("invalid JSON: unexpected data after the object")
	}
	return out, nil
}
