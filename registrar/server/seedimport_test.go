package server

import (
	"os"
	"path/filepath"
	"strings"
	"switchyard/registrar/store"
	"testing"
)

func TestImportSeed(t *testing.T) {
	cases := []struct {
		name, file string
		allow      string
		want       map[string]string // host → address after the import; nil: refused
		errHas     string
	}{
		{"the seed's example", `{"user-service": "192.168.1.100", "order-service": "192.168.1.101", "payment-service": "payment-pod-xyz"}`, "",
			map[string]string{"user-service": "192.168.1.100", "order-service": "192.168.1.101", "payment-service": "payment-pod-xyz", "kept": "10.9.9.9"}, ""},
		{"empty object", `{}`, "", map[string]string{"kept": "10.9.9.9"}, ""},
		{"bad address names the entry", `{"ok": "10.0.0.1", "bad": "10.0.0.300"}`, "", nil, `entry "bad"`},
		{"denied address names the entry", `{"ok": "10.0.0.1", "meta": "169.254.169.254"}`, "", nil, `entry "meta"`},
		{"allow-cidr applies", `{"local": "127.0.0.1:9001"}`, "127.0.0.0/8", map[string]string{"local": "127.0.0.1:9001", "kept": "10.9.9.9"}, ""},
		{"bad name names the entry", `{"web 1": "10.0.0.1"}`, "", nil, `entry "web 1"`},
		{"duplicate name", `{"a": "10.0.0.1", "a": "10.0.0.2"}`, "", nil, `"a" appears more than once`},
		{"non-string address", `{"a": 10}`, "", nil, `entry "a"`},
		{"not an object", `["a"]`, "", nil, "JSON object"},
		{"not JSON", `{"a": `, "", nil, "invalid JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			seed := filepath.Join(dir, "server_mapping.json")
			os.WriteFile(seed, []byte(c.file), 0o600)
			s, err := store.Open(filepath.Join(dir, "servers.json"), store.EmbeddedOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.Write(store.Change{Name: "kept", Server: &store.Server{Target: "10.9.9.9", Service: "cms"}})
			allow, _ := ParseAllowCIDRs(c.allow)
			_, err = importSeed(s, seed, Policy{Allow: allow})
			snap := s.Current()
			if c.want == nil {
				if err == nil || !strings.Contains(err.Error(), c.errHas) || !strings.Contains(err.Error(), "nothing was imported") {
					t.Fatalf("import = %v, want an error with %q", err, c.errHas)
				}
				if snap.Revision() != 1 || snap.Len() != 1 {
					t.Fatalf("a refused import changed the table: revision %d, %d servers", snap.Revision(), snap.Len())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if snap.Len() != len(c.want) {
				t.Fatalf("table of %d servers, want %v", snap.Len(), c.want)
			}
			for h, a := range c.want {
				sv, _ := snap.Get(h)
				wantService := importedServiceName
				if h == "kept" {
					wantService = "cms"
				}
				if sv.Target != a || sv.Service != wantService {
					t.Errorf("%s = %+v, want %s (%s)", h, sv, a, wantService)
				}
			}
		})
	}
}

// Importing the same file twice changes nothing the second time.
func TestImportSeedIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "server_mapping.json")
	os.WriteFile(seed, []byte(`{"a": "10.0.0.1", "b": "10.0.0.2"}`), 0o600)
	s, err := store.Open(filepath.Join(dir, "servers.json"), store.EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first, err := importSeed(s, seed, Policy{})
	if err != nil || !first.Changed || first.Revision != 1 {
		t.Fatalf("first import %+v %v", first, err)
	}
	second, err := importSeed(s, seed, Policy{})
	if err != nil || second.Changed || second.Revision != 1 {
		t.Fatalf("second import %+v %v", second, err)
	}
}
