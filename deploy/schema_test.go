package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/tidwall/gjson"

	"switchyard/internal/pluginconfig"
)

const schemaFile = "plugin-config.schema.json"

// configSchema compiles deploy/plugin-config.schema.json as editors do (its $schema:
// draft 2020-12), with pattern and bounds asserted.
func configSchema(t testing.TB) (*jsonschema.Schema, map[string]any) {
	t.Helper()
	b, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s is not JSON: %v", schemaFile, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("file:///"+schemaFile, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("file:///" + schemaFile)
	if err != nil {
		t.Fatalf("%s does not compile: %v", schemaFile, err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	return s, raw
}

// schemaAccepts reports whether data, a JSON document, validates, and why not.
func schemaAccepts(s *jsonschema.Schema, data []byte) (bool, string) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return false, "not JSON: " + err.Error()
	}
	if err := s.Validate(doc); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// inexpressible says why the parser and the schema may rightly differ on data, or "".
// These are the only differences allowed, each stated in the schema's description:
// JSON Schema sees a document after decoding, so it cannot tell a key given twice from
// a key given once, nor 80 from 80.0 or 8e1 (the same number); and it validates JSON
// documents, while the filter also takes an empty configuration as all defaults.
func inexpressible(data []byte) string {
	if len(bytes.TrimSpace(data)) == 0 {
		return "empty configuration (all defaults)"
	}
	if !json.Valid(data) {
		return "" // both must refuse it
	}
	if duplicateKey(data) {
		return "a key given twice"
	}
	for _, path := range []string{"default_port", "registrar.wait_seconds"} {
		v := gjson.GetBytes(data, path)
		if v.Type != gjson.Number || !strings.ContainsAny(v.Raw, ".eE") {
			continue
		}
		if f, _, err := big.ParseFloat(v.Raw, 10, 200, big.ToNearestEven); err == nil && f.IsInt() {
			return "integer " + v.Raw + " written with a fraction or exponent"
		}
	}
	return ""
}

// duplicateKey reports whether some object in the JSON document data repeats a key.
func duplicateKey(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		obj   bool
		keys  map[string]bool
		isKey bool // the next token in this object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) || err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.isKey {
			if d, ok := tok.(json.Delim); !ok || d != '}' {
				k := tok.(string)
				if top.keys[k] {
					return true
				}
				top.keys[k] = true
				top.isKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, keys: map[string]bool{}, isKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: the enclosing object expects a key next.
		if len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].isKey = true
		}
	}
}

// agreementCases are configurations on which the schema and the parser must agree,
// good and bad: each key, its type, its bounds, its syntax, unknown keys.
type agreementCase struct {
	name string
	json string
	ok   bool
}

var agreementCases = []agreementCase{
	{"empty object", `{}`, true},
	{"everything", `{"header":"X-Target-Server","path_prefixes":["/sys","/logs/v2"],"default_port":8080,"strip_header":true,"registrar":{"cluster":"outbound|9000||registrar.switchyard.svc.cluster.local","authority":"registrar.switchyard.svc.cluster.local","path":"/v1/routes","wait_seconds":600,"token":"s3cret"}}`, true},
	{"pluginconfig.Default() written out", `{"header":"x-server-name","path_prefixes":["/sys"],"default_port":80,"strip_header":false,"registrar":{"cluster":"registrar","authority":"registrar","path":"/v1/routes","wait_seconds":30,"token":""}}`, true},
	{"not an object", `["/sys"]`, false},
	{"a string", `"x"`, false},
	{"null", `null`, false},
	{"not JSON", `{"header":`, false},
	{"trailing data", `{} {}`, false},
	{"unknown key", `{"headers":"x"}`, false},
	{"key in another case", `{"Header":"x"}`, false},
	{"unknown registrar key", `{"registrar":{"url":"http://x"}}`, false},
	{"header token chars", "{\"header\":\"x!#$%&'*+-.^_`|~9\"}", true},
	{"header wrong type", `{"header":1}`, false},
	{"header empty", `{"header":""}`, false},
	{"header with space", `{"header":"x server"}`, false},
	{"header pseudo", `{"header":":authority"}`, false},
	{"header not ASCII", `{"header":"x-ÿ"}`, false},
	{"prefix root", `{"path_prefixes":["/"]}`, true},
	{"prefix one char", `{"path_prefixes":["/a"]}`, true},
	{"prefix visible ASCII", `{"path_prefixes":["/a!\"$%&'()*+,-.:;<=>@[\\]^_` + "`" + `{|}~z"]}`, true},
	{"prefixes repeated", `{"path_prefixes":["/sys","/sys"]}`, true},
	{"prefixes wrong type", `{"path_prefixes":"/sys"}`, false},
	{"prefix wrong element type", `{"path_prefixes":["/sys",2]}`, false},
	{"prefixes empty", `{"path_prefixes":[]}`, false},
	{"prefix empty", `{"path_prefixes":[""]}`, false},
	{"prefix without slash", `{"path_prefixes":["sys"]}`, false},
	{"prefix with trailing slash", `{"path_prefixes":["/sys/"]}`, false},
	{"prefix double slash", `{"path_prefixes":["//"]}`, false},
	{"prefix with query", `{"path_prefixes":["/sys?a"]}`, false},
	{"prefix with fragment", `{"path_prefixes":["/sys#a"]}`, false},
	{"prefix with space", `{"path_prefixes":["/s ys"]}`, false},
	{"prefix with NUL", `{"path_prefixes":["/sys\u0000"]}`, false},
	{"prefix with DEL", `{"path_prefixes":["/sys\u007f"]}`, false},
	{"prefix not ASCII", `{"path_prefixes":["/sÿs"]}`, false},
	{"port min", `{"default_port":1}`, true},
	{"port max", `{"default_port":65535}`, true},
	{"port wrong type", `{"default_port":"80"}`, false},
	{"port fraction", `{"default_port":80.5}`, false},
	{"port zero", `{"default_port":0}`, false},
	{"port negative", `{"default_port":-80}`, false},
	{"port too big", `{"default_port":65536}`, false},
	{"port huge", `{"default_port":99999999999999999999}`, false},
	{"strip true", `{"strip_header":true}`, true},
	{"strip wrong type", `{"strip_header":"yes"}`, false},
	{"strip null", `{"strip_header":null}`, false},
	{"registrar empty", `{"registrar":{}}`, true},
	{"registrar wrong type", `{"registrar":"registrar"}`, false},
	{"registrar null", `{"registrar":null}`, false},
	{"cluster wrong type", `{"registrar":{"cluster":null}}`, false},
	{"cluster empty", `{"registrar":{"cluster":""}}`, false},
	{"cluster Istio form", `{"registrar":{"cluster":"outbound|9000||registrar.ns.svc.cluster.local"}}`, true},
	{"cluster not ASCII", `{"registrar":{"cluster":"régistrar"}}`, true},
	{"cluster with DEL", `{"registrar":{"cluster":"reg\u007f"}}`, false},
	{"authority empty", `{"registrar":{"authority":""}}`, false},
	{"authority with tab", `{"registrar":{"authority":"reg\tx"}}`, false},
	{"authority with port", `{"registrar":{"authority":"registrar:9000"}}`, true},
	{"path root", `{"registrar":{"path":"/"}}`, true},
	{"path trailing slash", `{"registrar":{"path":"/v1/routes/"}}`, true},
	{"path relative", `{"registrar":{"path":"v1/routes"}}`, false},
	{"path empty", `{"registrar":{"path":""}}`, false},
	{"path with query", `{"registrar":{"path":"/v1/routes?x=1"}}`, false},
	{"path with tab", `{"registrar":{"path":"/v1/routes\t"}}`, false},
	{"path with space", `{"registrar":{"path":"/v1/my routes"}}`, false},
	{"wait min", `{"registrar":{"wait_seconds":1}}`, true},
	{"wait wrong type", `{"registrar":{"wait_seconds":true}}`, false},
	{"wait zero", `{"registrar":{"wait_seconds":0}}`, false},
	{"wait too long", `{"registrar":{"wait_seconds":601}}`, false},
	{"token empty", `{"registrar":{"token":""}}`, true},
	{"token with spaces", `{"registrar":{"token":"a b c"}}`, true},
	{"token wrong type", `{"registrar":{"token":42}}`, false},
	{"token with newline", `{"registrar":{"token":"a\nb"}}`, false},
	{"token with CR", `{"registrar":{"token":"a\rb"}}`, false},
	// A final newline: Python's re.search reads `$` as "at the end or before a final
	// newline", ECMA-262 and Go as "at the end" (TestSchemaSecondValidator).
	{"header with final newline", `{"header":"x-server-name\n"}`, false},
	{"prefix with final newline", `{"path_prefixes":["/sys\n"]}`, false},
	{"root prefix with final newline", `{"path_prefixes":["/\n"]}`, false},
	{"proxy id with final newline", `{"proxy_id":"edge-a\n"}`, false},
	{"proxy id a newline", `{"proxy_id":"\n"}`, false},
	{"cluster with final newline", `{"registrar":{"cluster":"registrar\n"}}`, false},
	{"authority with final newline", `{"registrar":{"authority":"registrar\n"}}`, false},
	{"path with final newline", `{"registrar":{"path":"/v1/routes\n"}}`, false},
	{"token with final newline", `{"registrar":{"token":"s3cret\n"}}`, false},
	{"token a newline", `{"registrar":{"token":"\n"}}`, false},
}

// TestSchemaAgreesWithParser: for every configuration of the table, the filter's
// parser and deploy/plugin-config.schema.json give the same verdict, and the verdict
// is the expected one. A disagreement means one of them changed: update the other.
func TestSchemaAgreesWithParser(t *testing.T) {
	s, _ := configSchema(t)
	for _, c := range agreementCases {
		data := []byte(c.json)
		if why := inexpressible(data); why != "" {
			t.Errorf("%s: table case %s is one JSON Schema cannot judge (%s); move it to TestSchemaKnownDifferences", c.name, data, why)
			continue
		}
		_, perr := pluginconfig.Parse(data)
		sok, swhy := schemaAccepts(s, data)
		if (perr == nil) != sok {
			t.Errorf("%s: %s: the parser says %v, %s says %v (%s): keep them in step", c.name, data, verdict(perr), schemaFile, sok, swhy)
			continue
		}
		if sok != c.ok {
			t.Errorf("%s: %s: both %s it; the table expects accepted=%v", c.name, data, map[bool]string{true: "accept", false: "refuse"}[sok], c.ok)
		}
	}
}

// TestSchemaSecondValidator runs the table through a second, independent validator
// (Python's jsonschema; scripts/test-deps installs Debian's python3-jsonschema), so the
// schema says the same in a dialect other than Go's: its patterns are ECMA-262 regular
// expressions, which validators run with their own engines.
func TestSchemaSecondValidator(t *testing.T) {
	if err := exec.Command("python3", "-c", "import jsonschema").Run(); err != nil {
		t.Fatalf("python3 with jsonschema is needed for this test (%v): run scripts/test-deps, or apt-get install python3-jsonschema", err)
	}
	_, raw := configSchema(t)
	cases := append(agreementCases[:len(agreementCases):len(agreementCases)], finalNewlineCases(t, raw)...)
	var docs []string
	for _, c := range cases {
		docs = append(docs, c.json)
	}
	in, _ := json.Marshal(docs)
	cmd := exec.Command("python3", "testdata/validate.py", schemaFile)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 testdata/validate.py: %v\n%s", err, stderr.String())
	}
	var verdicts []*string
	if err := json.Unmarshal(out, &verdicts); err != nil || len(verdicts) != len(docs) {
		t.Fatalf("validate.py answered %s (%v); want %d verdicts", out, err, len(docs))
	}
	for i, c := range cases {
		if ok := verdicts[i] == nil; ok != c.ok {
			why := ""
			if verdicts[i] != nil {
				why = ": " + *verdicts[i]
			}
			t.Errorf("%s: %q: Python's jsonschema says accepted=%v%s; the table (and the parser) say %v", c.name, c.json, ok, why, c.ok)
		}
	}
}

// finalNewlineCases are, for every string the schema gives a pattern (the keys added
// later too), its default with a line feed appended: a case every validator and the
// parser must refuse. The schema's one_line definition is what makes Python refuse it,
// so each pattern must sit beside a reference to it.
func finalNewlineCases(t *testing.T, raw map[string]any) []agreementCase {
	var out []agreementCase
	var walk func(path []string, node map[string]any)
	walk = func(path []string, node map[string]any) {
		props, _ := node["properties"].(map[string]any)
		for k, v := range props {
			p, _ := v.(map[string]any)
			walk(append(path[:len(path):len(path)], k), p)
		}
		pattern := node["pattern"]
		value := node["default"]
		if items, ok := node["items"].(map[string]any); ok {
			pattern = items["pattern"]
			if d, _ := value.([]any); len(d) > 0 {
				value = d[0]
			}
			if items["pattern"] != nil && items["$ref"] != "#/$defs/one_line" {
				t.Errorf("%s: the items' pattern has no \"$ref\": \"#/$defs/one_line\" beside it", strings.Join(path, "."))
			}
		} else if pattern != nil && node["$ref"] != "#/$defs/one_line" {
			t.Errorf("%s: its pattern has no \"$ref\": \"#/$defs/one_line\" beside it", strings.Join(path, "."))
		}
		if pattern == nil {
			return
		}
		str, _ := value.(string)
		var doc any = str + "\n"
		if _, ok := node["items"]; ok {
			doc = []any{doc}
		}
		for i := len(path) - 1; i >= 0; i-- {
			doc = map[string]any{path[i]: doc}
		}
		b, _ := json.Marshal(doc)
		out = append(out, agreementCase{strings.Join(path, ".") + " default with a final newline", string(b), false})
	}
	walk(nil, raw)
	if len(out) < 7 {
		t.Fatalf("found %d strings with a pattern in %s; want at least 7", len(out), schemaFile)
	}
	s, _ := configSchema(t)
	for _, c := range out {
		if _, err := pluginconfig.Parse([]byte(c.json)); err == nil {
			t.Errorf("%s: the parser accepts %s", c.name, c.json)
		}
		if ok, _ := schemaAccepts(s, []byte(c.json)); ok {
			t.Errorf("%s: %s accepts %s", c.name, schemaFile, c.json)
		}
	}
	return out
}

func verdict(err error) string {
	if err == nil {
		return "accepted"
	}
	return "refused (" + err.Error() + ")"
}

// TestSchemaKnownDifferences pins the differences JSON Schema cannot express, so that
// they stay exactly these (and are said in the schema's description).
func TestSchemaKnownDifferences(t *testing.T) {
	s, raw := configSchema(t)
	for _, c := range []struct{ json, why string }{
		{`{"default_port":80,"default_port":81}`, "a key given twice"},
		{`{"registrar":{"token":"a","token":"b"}}`, "a key given twice"},
		{`{"default_port":80.0}`, "integer 80.0 written with a fraction or exponent"},
		{`{"default_port":8e1}`, "integer 8e1 written with a fraction or exponent"},
		{`{"registrar":{"wait_seconds":3E1}}`, "integer 3E1 written with a fraction or exponent"},
	} {
		data := []byte(c.json)
		if got := inexpressible(data); got != c.why {
			t.Errorf("inexpressible(%s) = %q, want %q", data, got, c.why)
		}
		if _, err := pluginconfig.Parse(data); err == nil {
			t.Errorf("the parser accepts %s (%s); it should refuse it", data, c.why)
		}
		if ok, why := schemaAccepts(s, data); !ok {
			t.Errorf("the schema refuses %s (%s): %s; then it is no longer a known difference", data, c.why, why)
		}
	}
	desc, _ := raw["description"].(string)
	for _, say := range []string{"twice", "80.0", "8e1", "empty configuration"} {
		if !strings.Contains(desc, say) {
			t.Errorf("the schema's description does not say what it cannot check (%q)", say)
		}
	}
	if _, err := pluginconfig.Parse(nil); err != nil {
		t.Errorf("an empty configuration is refused: %v", err)
	}
}

// FuzzSchemaAgreement runs the table and the parser's fuzz corpus (its seeds run in
// every `go test`; `go test -fuzz FuzzSchemaAgreement ./deploy/` searches further):
// wherever JSON Schema can judge, the schema and the parser agree.
func FuzzSchemaAgreement(f *testing.F) {
	for _, c := range agreementCases {
		f.Add([]byte(c.json))
	}
	for _, data := range fuzzCorpus(f) {
		f.Add(data)
	}
	s, _ := configSchema(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if inexpressible(data) != "" {
			return
		}
		_, perr := pluginconfig.Parse(data)
		sok, swhy := schemaAccepts(s, data)
		if (perr == nil) != sok {
			t.Errorf("%q: the parser says %v, %s says %v (%s)", data, verdict(perr), schemaFile, sok, swhy)
		}
	})
}

// fuzzCorpus reads the inputs the parser's own fuzzer kept
// (internal/pluginconfig/testdata/fuzz/FuzzConfig, "go test fuzz v1" files).
func fuzzCorpus(t testing.TB) [][]byte {
	files, _ := filepath.Glob("../internal/pluginconfig/testdata/fuzz/FuzzConfig/*")
	var out [][]byte
	line := regexp.MustCompile(`(?m)^\[\]byte\((".*")\)$`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m := line.FindSubmatch(b)
		if m == nil {
			continue
		}
		s, err := strconv.Unquote(string(m[1]))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, []byte(s))
	}
	return out
}

// TestSchemaNamesEveryKey: the schema has a property for every key of the parser's
// Config (and no other), with the parser's default, so a key added to one is added to
// the other. Keys are the snake_case of the Go field names (ProxyID -> proxy_id).
func TestSchemaNamesEveryKey(t *testing.T) {
	_, raw := configSchema(t)
	props := func(m map[string]any) map[string]any { p, _ := m["properties"].(map[string]any); return p }
	top := props(raw)
	reg, _ := top["registrar"].(map[string]any)
	check := func(where string, goType reflect.Type, schemaProps map[string]any, defaults reflect.Value) {
		var fromGo, fromSchema []string
		for i := 0; i < goType.NumField(); i++ {
			key := snake(goType.Field(i).Name)
			fromGo = append(fromGo, key)
			p, ok := schemaProps[key].(map[string]any)
			if !ok {
				t.Errorf("%s: the parser has key %q (Config field %s); add it to %s", where, key, goType.Field(i).Name, schemaFile)
				continue
			}
			if goType.Field(i).Type.Kind() == reflect.Struct {
				continue
			}
			want, _ := json.Marshal(defaults.Field(i).Interface())
			got, _ := json.Marshal(p["default"])
			if string(got) != string(want) {
				t.Errorf("%s.%s: the schema's default is %s, the parser's %s", where, key, got, want)
			}
		}
		for k := range schemaProps {
			fromSchema = append(fromSchema, k)
		}
		sort.Strings(fromGo)
		sort.Strings(fromSchema)
		if !reflect.DeepEqual(fromGo, fromSchema) {
			t.Errorf("%s: the parser's keys %v, the schema's %v", where, fromGo, fromSchema)
		}
		// The parser must know every key the schema names: a minimal value of each
		// is accepted (a key the schema names but the parser lacks is refused).
		for _, k := range fromSchema {
			p := schemaProps[k].(map[string]any)
			ex, _ := json.Marshal(p["default"])
			if p["type"] == "object" {
				ex = []byte("{}")
			}
			doc := `{"` + k + `":` + string(ex) + `}`
			if where == "registrar" {
				doc = `{"registrar":` + doc + `}`
			}
			if _, err := pluginconfig.Parse([]byte(doc)); err != nil {
				t.Errorf("the parser refuses the schema's key %s with its default: %s: %v", k, doc, err)
			}
		}
	}
	d := reflect.ValueOf(pluginconfig.Default())
	check("top level", reflect.TypeOf(pluginconfig.Config{}), top, d)
	check("registrar", reflect.TypeOf(pluginconfig.RegistrarConfig{}), props(reg), d.FieldByName("Registrar"))
	// The parser's own list of keys, from its message for an unknown key.
	for _, c := range []struct{ doc, where string }{{`{"zz":1}`, "top level"}, {`{"registrar":{"zz":1}}`, "registrar"}} {
		_, err := pluginconfig.Parse([]byte(c.doc))
		if err == nil {
			t.Fatalf("%s accepted", c.doc)
		}
		_, list, ok := strings.Cut(err.Error(), "the known keys are ")
		if !ok {
			t.Errorf("the parser's unknown-key message %q no longer lists the keys; this test reads it", err)
			continue
		}
		sp := top
		if c.where == "registrar" {
			sp = props(reg)
		}
		for _, k := range strings.Split(list, ", ") {
			k = strings.TrimPrefix(k, "registrar.")
			if _, ok := sp[k]; !ok {
				t.Errorf("%s: the parser knows key %q; add it to %s", c.where, k, schemaFile)
			}
		}
	}
}

// snake turns a Go field name into the configuration's key: PathPrefixes ->
// path_prefixes, ProxyID -> proxy_id.
func snake(name string) string {
	var b strings.Builder
	r := []rune(name)
	for i, c := range r {
		if unicode.IsUpper(c) {
			prevLower := i > 0 && !unicode.IsUpper(r[i-1])
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			if i > 0 && (prevLower || nextLower) {
				b.WriteByte('_')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}

// TestManifestConfigsMatchSchema: the plugin configurations in the manifests and the
// schema's own examples validate against the schema (as well as the parser, which the
// wiring tests check).
func TestManifestConfigsMatchSchema(t *testing.T) {
	s, raw := configSchema(t)
	var configs []struct {
		where string
		data  []byte
	}
	for _, o := range readManifests(t, "envoy-gateway/switchyard.yaml") {
		for _, w := range list(dig(o.m, "spec", "wasm")) {
			configs = append(configs, struct {
				where string
				data  []byte
			}{o.String(), mustJSON(t, dig(w, "config"))})
		}
	}
	for _, o := range readManifests(t, "istio/wasmplugin.yaml") {
		if o.kind() != "WasmPlugin" {
			continue
		}
		configs = append(configs, struct {
			where string
			data  []byte
		}{o.String(), istioPluginConfig(t, dig(o.m, "spec", "pluginConfig"))})
	}
	for i, ex := range list(raw["examples"]) {
		configs = append(configs, struct {
			where string
			data  []byte
		}{"schema example " + strconv.Itoa(i), mustJSON(t, ex)})
	}
	if len(configs) < 3 {
		t.Fatalf("found %d configurations; want the Envoy Gateway and Istio ones and the schema's example", len(configs))
	}
	for _, c := range configs {
		if ok, why := schemaAccepts(s, c.data); !ok {
			t.Errorf("%s: configuration %s does not match %s: %s", c.where, c.data, schemaFile, why)
		}
		if _, err := pluginconfig.Parse(c.data); err != nil {
			t.Errorf("%s: the parser refuses %s: %v", c.where, c.data, err)
		}
	}
}

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{"Header": "header", "PathPrefixes": "path_prefixes", "WaitSeconds": "wait_seconds", "ProxyID": "proxy_id", "ID": "id", "HTTPPath": "http_path"} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
}
