package store

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/google/btree"
)

// The data file (-data) holds the table as of one revision, as one JSON object:
//
//	{"revision": 7, "lineage": "9f…", "servers": [
//	{"host": "web-1", "ipAddress": "10.1.2.3:8080", "serviceName": "logs", "updatedAt": "…"},
//	{"host": "web-2", "ipAddress": "10.1.2.4:80", "targets": [{"address": "10.1.2.4:80", "weight": 90, "state": "active"}, …], …},
//	…]}
//
// A server of one active target of weight 1 has no "targets" (it is written exactly
// as before target sets); "targets" holds any other set, "ipAddress" its first
// active target, and a target's "down": true the active health check's finding.
//
// one server per line, names in byte order. It is replaced whole (temporary file,
// fsync, rename, fsync of the folder) only when the log is compacted; the changes
// after its revision are in the log segments beside it (see wal.go). A file without
// "lineage" was written by a registrar before the log existed (it rewrote this file
// on every commit); it loads as it is and is rewritten with a lineage at once.

// snapshotFile is what readSnapshot found.
type snapshotFile struct {
	revision uint64
	lineage  string // "" in a file of the old format
	tree     *btree.BTreeG[Server]
	size     int64
}

// readSnapshot reads the data file strictly: exactly one JSON object with
// "revision" (a whole number), "servers" (an array, possibly empty) and, in the
// current format, "lineage"; nothing else, nothing after it. Every entry must pass
// the rules a write passes (check); the first that does not is named.
func readSnapshot(path string, check func(Server) error) (*snapshotFile, error) {
	f, err := openRegular(path, os.O_RDONLY, 0, "data file")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("data file %s is not valid registrar data: %s; restore it from a backup (or move it and its .wal-* files away and start with -init)", path, fmt.Sprintf(format, a...))
	}
	dec := json.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	dec.DisallowUnknownFields()
	tok, err := dec.Token()
	if err != nil {
		return nil, bad("%v", jsonErr(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, bad("it is %s, not a JSON object", describe(tok))
	}
	out := &snapshotFile{tree: newTree(), size: st.Size()}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad("%v", jsonErr(err))
		}
		key, _ := tok.(string)
		if seen[key] {
			return nil, bad("%q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "revision":
			var n json.RawMessage
			if err := dec.Decode(&n); err != nil {
				return nil, bad("revision: %v", jsonErr(err))
			}
			out.revision, err = strconv.ParseUint(string(n), 10, 64)
			if err != nil {
				return nil, bad("revision %.40s is not a whole number >= 0", n)
			}
		case "lineage":
			if err := dec.Decode(&out.lineage); err != nil || !validLineage(out.lineage) {
				return nil, bad("lineage must be 32 hexadecimal digits")
			}
		case "servers":
			tok, err := dec.Token()
			if err != nil {
				return nil, bad("servers: %v", jsonErr(err))
			}
			if d, ok := tok.(json.Delim); !ok || d != '[' {
				return nil, bad("servers is %s, not an array", describe(tok))
			}
			for i := 0; dec.More(); i++ {
				var raw *rawServer
				if err := dec.Decode(&raw); err != nil {
					return nil, bad("servers[%d]: %v", i, jsonErr(err))
				}
				sv, err := raw.server()
				if err != nil {
					return nil, bad("servers[%d]: %v", i, err)
				}
				if err := check(sv); err != nil {
					return nil, bad("server %q: %v; fix or remove the entry", sv.Name, err)
				}
				if _, dup := out.tree.ReplaceOrInsert(sv); dup {
					return nil, bad("server %q appears twice; remove one entry", sv.Name)
				}
			}
			if _, err := dec.Token(); err != nil {
				return nil, bad("servers: %v", jsonErr(err))
			}
		default:
			return nil, bad("unknown field %q", key)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad("%v", jsonErr(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("there is more data after the object")
	}
	for _, k := range []string{"revision", "servers"} {
		if !seen[k] {
			return nil, bad("%q is missing", k)
		}
	}
	return out, nil
}

// rawServer is one entry of the data file as decoded (the decoder refuses unknown
// fields): host, ipAddress and serviceName must be present and not null, targets,
// healthCheck and updatedAt are optional.
type rawServer struct {
	Name        *string      `json:"host"`
	Target      *string      `json:"ipAddress"`
	Targets     []Target     `json:"targets"`
	HealthCheck *HealthCheck `json:"healthCheck"`
	Service     *string      `json:"serviceName"`
	UpdatedAt   *time.Time   `json:"updatedAt"`
}

func (r *rawServer) server() (Server, error) {
	if r == nil {
		return Server{}, errors.New("not a JSON object")
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"host", r.Name}, {"ipAddress", r.Target}, {"serviceName", r.Service}} {
		if f.v == nil {
			return Server{}, fmt.Errorf("%q is missing", f.name)
		}
	}
	sv := Server{Name: *r.Name, Target: *r.Target, Targets: r.Targets, HealthCheck: r.HealthCheck, Service: *r.Service}
	if r.UpdatedAt != nil {
		sv.UpdatedAt = *r.UpdatedAt
	}
	return sv, nil
}

func jsonErr(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("the data ends early (cut short)")
	}
	return err
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		return "'" + v.String() + "'"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}

func validLineage(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// writeSnapshot makes t (with lineage) the content of the data file at path, durably.
func writeSnapshot(path, lineage string, t *Table) (int64, error) {
	var n int64
	err := replaceFileWith(path, func(w io.Writer) error {
		cw := &countWriter{w: w}
		fmt.Fprintf(cw, "{\"revision\": %d, \"lineage\": %q, \"servers\": [", t.revision, lineage)
		first := true
		var err error
		t.Ascend("", func(sv Server) bool {
			var b []byte
			if b, err = json.Marshal(sv); err != nil {
				return false
			}
			if !first {
				cw.Write([]byte{','})
			}
			first = false
			cw.Write([]byte{'\n'})
			_, err = cw.Write(b)
			return err == nil
		})
		if err != nil {
			return err
		}
		_, err = cw.Write([]byte("\n]}\n"))
		n = cw.n
		return err
	})
	return n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
