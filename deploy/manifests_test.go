// Package deploy holds no Go code: it is the Kubernetes manifests, the plugin
// configuration's JSON Schema and the tests that check them (run by `go test ./...`).
package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"switchyard/internal/contract"
	"switchyard/internal/pluginconfig"
)

// The manifest files, each a YAML stream of Kubernetes objects.
var manifestFiles = []string{
	"registrar/registrar.yaml",
	"envoy-gateway/switchyard.yaml",
	"istio/wasmplugin.yaml",
}

// object is one manifest document as the API server sees it: JSON.
type object struct {
	file string
	raw  []byte         // JSON
	m    map[string]any // decoded with encoding/json
}

func (o object) apiVersion() string { s, _ := o.m["apiVersion"].(string); return s }
func (o object) kind() string       { s, _ := o.m["kind"].(string); return s }
func (o object) name() string       { return str(o.m, "metadata", "name") }
func (o object) namespace() string  { return str(o.m, "metadata", "namespace") }
func (o object) String() string {
	return fmt.Sprintf("%s: %s %s/%s", o.file, o.kind(), o.namespace(), o.name())
}

// str follows keys through nested maps and returns the string there, or "".
func str(m map[string]any, keys ...string) string {
	v := dig(m, keys...)
	s, _ := v.(string)
	return s
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func list(v any) []any { l, _ := v.([]any); return l }

// has reports whether the object m has the key k (of any value).
func has(m map[string]any, k string) bool { _, ok := m[k]; return ok }

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// readManifests splits a YAML stream into its documents and converts each to JSON.
func readManifests(t *testing.T, file string) []object {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []object
	for i, doc := range docSeparator.Split(string(b), -1) {
		raw, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("%s document %d: %v", file, i, err)
		}
		if string(raw) == "null" {
			continue // comments only
		}
		o := object{file: file, raw: raw}
		if err := json.Unmarshal(raw, &o.m); err != nil {
			t.Fatalf("%s document %d: %v", file, i, err)
		}
		out = append(out, o)
	}
	if len(out) == 0 {
		t.Fatalf("%s holds no objects", file)
	}
	return out
}

func allManifests(t *testing.T) []object {
	var all []object
	for _, f := range manifestFiles {
		all = append(all, readManifests(t, f)...)
	}
	return all
}

// crdSchema is one vendored CRD schema (testdata/crds, see its README.md).
type crdSchema struct {
	Source struct {
		Repository, Tag, Commit, Path, Group, Version, Kind string
	} `json:"x-switchyard-source"`
	Schema map[string]any `json:"schema"`
}

// crdValidator is one vendored CRD schema, compiled.
type crdValidator struct {
	source string // "github.com/istio/istio 1.25.0"
	schema *jsonschema.Schema
}

// crdValidators compiles every vendored CRD schema, keyed by "apiVersion kind"; each
// kind has the schema of the oldest release the manifests are meant for and of a
// current one (testdata/crds/README.md).
// Each schema is made strict first (strictSchema): the API server drops unknown fields
// silently (or refuses them, with kubectl's strict field validation), and either way
// a misspelt field must fail here.
func crdValidators(t *testing.T) map[string][]crdValidator {
	t.Helper()
	files, err := filepath.Glob("testdata/crds/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no vendored CRD schemas in testdata/crds: %v", err)
	}
	out := map[string][]crdValidator{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c crdSchema
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// The API server accepts these at the top of every object, whether or not a
		// CRD's schema lists them (Istio's list only spec and status).
		props, _ := c.Schema["properties"].(map[string]any)
		for _, k := range []string{"apiVersion", "kind"} {
			if _, ok := props[k]; !ok {
				props[k] = map[string]any{"type": "string"}
			}
		}
		if _, ok := props["metadata"]; !ok {
			props["metadata"] = map[string]any{"type": "object"}
		}
		strictSchema(c.Schema)
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(mustJSON(t, c.Schema)))
		if err != nil {
			t.Fatal(err)
		}
		comp := jsonschema.NewCompiler()
		// Kubernetes schemas are OpenAPI 3.0 schemas: JSON Schema draft 4 keywords
		// (exclusiveMaximum is a boolean beside maximum), plus x-kubernetes-*.
		comp.DefaultDraft(jsonschema.Draft4)
		url := "file:///crds/" + filepath.Base(f)
		if err := comp.AddResource(url, doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		s, err := comp.Compile(url)
		if err != nil {
			t.Fatalf("%s does not compile as a JSON Schema: %v", f, err)
		}
		key := c.Source.Group + "/" + c.Source.Version + " " + c.Source.Kind
		out[key] = append(out[key], crdValidator{c.Source.Repository + " " + c.Source.Tag, s})
	}
	return out
}

// strictSchema adds additionalProperties: false to every object schema that lists its
// properties and neither allows other keys nor preserves unknown fields, the
// structural-schema rule by which the API server prunes (or refuses) unknown fields.
func strictSchema(v any) {
	switch s := v.(type) {
	case map[string]any:
		_, hasProps := s["properties"].(map[string]any)
		_, hasAdditional := s["additionalProperties"]
		preserve, _ := s["x-kubernetes-preserve-unknown-fields"].(bool)
		if hasProps && !hasAdditional && !preserve {
			s["additionalProperties"] = false
		}
		for _, child := range s {
			strictSchema(child)
		}
	case []any:
		for _, child := range s {
			strictSchema(child)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func validateObject(s *jsonschema.Schema, o object) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(o.raw))
	if err != nil {
		return err
	}
	return s.Validate(doc)
}

// Standard Kubernetes kinds used here, with their apiVersion; they are checked by the
// rules in checkStandard, not by a vendored schema.
var standardKinds = map[string]string{
	"Namespace":             "v1",
	"PersistentVolumeClaim": "v1",
	"Service":               "v1",
	"Deployment":            "apps/v1",
}

// TestManifestsMatchPublishedSchemas: every custom resource validates against the
// openAPIV3Schema of its CRD as published by its project (testdata/crds/README.md
// names versions and commits), unknown fields refused; every standard object has the
// right apiVersion, a name, a namespace where it needs one and the required fields.
func TestManifestsMatchPublishedSchemas(t *testing.T) {
	validators := crdValidators(t)
	kinds := map[string]int{}
	for _, o := range allManifests(t) {
		kinds[o.kind()]++
		if o.name() == "" {
			t.Errorf("%s: no metadata.name", o)
		}
		if v, ok := standardKinds[o.kind()]; ok {
			if o.apiVersion() != v {
				t.Errorf("%s: apiVersion %q, want %q", o, o.apiVersion(), v)
			}
			for _, p := range checkStandard(o) {
				t.Errorf("%s: %s", o, p)
			}
			continue
		}
		vs := validators[o.apiVersion()+" "+o.kind()]
		if len(vs) < 2 {
			t.Errorf("%s: %d vendored schemas for %s %s; want the oldest supported release's and a current one (testdata/crds)", o, len(vs), o.apiVersion(), o.kind())
		}
		if o.namespace() == "" {
			t.Errorf("%s: custom resources here are namespaced; give metadata.namespace", o)
		}
		for _, v := range vs {
			if err := validateObject(v.schema, o); err != nil {
				t.Errorf("%s does not match the CRD schema of %s:\n%v", o, v.source, err)
			}
		}
		for _, p := range celRules(o) {
			t.Errorf("%s: %s", o, p)
		}
	}
	for _, k := range []string{"Deployment", "Service", "EnvoyExtensionPolicy", "Backend", "HTTPRoute", "WasmPlugin"} {
		if kinds[k] == 0 {
			t.Errorf("no %s among the manifests", k)
		}
	}
}

// TestSchemaValidationCanFail: the same validation refuses manifests with the
// mistakes it is there to catch, so a pass above means something.
func TestSchemaValidationCanFail(t *testing.T) {
	validators := crdValidators(t)
	byKind := map[string]object{}
	for _, o := range allManifests(t) {
		byKind[o.kind()] = o
	}
	cases := []struct {
		kind, what string
		edit       func(m map[string]any)
	}{
		{"EnvoyExtensionPolicy", "rootId misspelt", func(m map[string]any) {
			w := list(dig(m, "spec", "wasm"))[0].(map[string]any)
			w["rootId"] = w["rootID"]
			delete(w, "rootID")
		}},
		{"EnvoyExtensionPolicy", "code type not in the enum", func(m map[string]any) {
			list(dig(m, "spec", "wasm"))[0].(map[string]any)["code"].(map[string]any)["type"] = "OCI"
		}},
		{"Backend", "type not in the enum", func(m map[string]any) { m["spec"].(map[string]any)["type"] = "Dynamic" }},
		{"HTTPRoute", "path match type not in the enum", func(m map[string]any) {
			rule := list(dig(m, "spec", "rules"))[0].(map[string]any)
			list(rule["matches"])[0].(map[string]any)["path"].(map[string]any)["type"] = "Prefix"
		}},
		{"WasmPlugin", "sha256 with its sha256: prefix", func(m map[string]any) {
			m["spec"].(map[string]any)["sha256"] = "sha256:" + strings.Repeat("a", 64)
		}},
		{"WasmPlugin", "no url", func(m map[string]any) { delete(m["spec"].(map[string]any), "url") }},
		{"WasmPlugin", "failStrategy not in the enum", func(m map[string]any) { m["spec"].(map[string]any)["failStrategy"] = "CLOSE" }},
	}
	for _, c := range cases {
		o, ok := byKind[c.kind]
		if !ok {
			t.Fatalf("no %s manifest", c.kind)
		}
		var m map[string]any
		if err := json.Unmarshal(o.raw, &m); err != nil {
			t.Fatal(err)
		}
		c.edit(m)
		broken := object{file: o.file, raw: mustJSON(t, m), m: m}
		for _, v := range validators[o.apiVersion()+" "+o.kind()] {
			if err := validateObject(v.schema, broken); err == nil {
				t.Errorf("%s with %s passed the schema of %s", c.kind, c.what, v.source)
			}
		}
	}
}

// celRules checks the CRDs' x-kubernetes-validations (CEL) rules that these
// manifests could break; a JSON Schema validator does not run CEL.
func celRules(o object) []string {
	var p []string
	spec, _ := o.m["spec"].(map[string]any)
	switch o.kind() {
	case "EnvoyExtensionPolicy":
		// "either targetRef or targetRefs must be used"
		if has(spec, "targetRef") == has(spec, "targetRefs") {
			p = append(p, "give exactly one of targetRef and targetRefs")
		}
		for _, w := range list(spec["wasm"]) {
			code, _ := dig(w, "code").(map[string]any)
			// "If type is Image, image field needs to be set." and the same for HTTP.
			if (code["type"] == "Image") != has(code, "image") || (code["type"] == "HTTP") != has(code, "http") {
				p = append(p, "wasm code: type Image needs image (and no http), type HTTP needs http")
			}
		}
	case "Backend":
		// "DynamicResolver type cannot have endpoints specified"
		if spec["type"] == "DynamicResolver" && has(spec, "endpoints") {
			p = append(p, "a DynamicResolver backend has no endpoints")
		}
	case "WasmPlugin":
		// "only one of targetRefs or selector can be set"
		n := 0
		for _, k := range []string{"selector", "targetRef", "targetRefs"} {
			if has(spec, k) {
				n++
			}
		}
		if n > 1 {
			p = append(p, "give at most one of selector, targetRef and targetRefs")
		}
	}
	return p
}

// checkStandard checks what the API server requires of the standard kinds used here.
func checkStandard(o object) []string {
	var p []string
	need := func(ok bool, msg string) {
		if !ok {
			p = append(p, msg)
		}
	}
	spec, _ := o.m["spec"].(map[string]any)
	switch o.kind() {
	case "Namespace":
		return nil
	case "PersistentVolumeClaim":
		need(o.namespace() != "", "no metadata.namespace")
		need(len(list(spec["accessModes"])) > 0, "no spec.accessModes")
		need(str(spec, "resources", "requests", "storage") != "", "no spec.resources.requests.storage")
	case "Deployment":
		need(o.namespace() != "", "no metadata.namespace")
		sel, _ := dig(spec, "selector", "matchLabels").(map[string]any)
		labels, _ := dig(spec, "template", "metadata", "labels").(map[string]any)
		need(len(sel) > 0, "no spec.selector.matchLabels")
		for k, v := range sel {
			need(labels[k] == v, "spec.selector label "+k+" is not on the pod template")
		}
		containers := list(dig(spec, "template", "spec", "containers"))
		need(len(containers) > 0, "no containers")
		for _, c := range containers {
			need(str(c.(map[string]any), "name") != "", "a container has no name")
			need(str(c.(map[string]any), "image") != "", "a container has no image")
			for _, port := range list(dig(c, "ports")) {
				n, _ := dig(port, "containerPort").(float64)
				need(n >= 1 && n <= 65535, "a containerPort is not a port")
			}
		}
	case "Service":
		need(o.namespace() != "", "no metadata.namespace")
		ports := list(spec["ports"])
		need(len(ports) > 0, "no spec.ports")
		for _, port := range ports {
			n, _ := dig(port, "port").(float64)
			need(n >= 1 && n <= 65535, "a Service port is not a port")
		}
	}
	return p
}

// registrarService is the registrar's Service and the port its Deployment serves
// on, with the checks that they fit together.
func registrarService(t *testing.T) (svc object, port int) {
	t.Helper()
	var dep object
	for _, o := range readManifests(t, "registrar/registrar.yaml") {
		switch o.kind() {
		case "Service":
			svc = o
		case "Deployment":
			dep = o
		}
	}
	if svc.m == nil || dep.m == nil {
		t.Fatal("registrar.yaml needs the registrar's Deployment and Service")
	}
	labels, _ := dig(dep.m, "spec", "template", "metadata", "labels").(map[string]any)
	sel, _ := dig(svc.m, "spec", "selector").(map[string]any)
	if len(sel) == 0 {
		t.Fatal("the registrar Service selects no pods")
	}
	for k, v := range sel {
		if labels[k] != v {
			t.Errorf("the registrar Service selects %s=%v, which the Deployment's pods do not carry", k, v)
		}
	}
	// The Service's targetPort names a container port, and that port is the one the
	// image listens on (REGISTRAR_LISTEN=0.0.0.0:9000).
	sp := list(dig(svc.m, "spec", "ports"))[0]
	target := dig(sp, "targetPort")
	found := false
	for _, c := range list(dig(dep.m, "spec", "template", "spec", "containers")) {
		for _, cp := range list(dig(c, "ports")) {
			if dig(cp, "name") == target || dig(cp, "containerPort") == target {
				found = true
				if dig(cp, "containerPort") != float64(9000) {
					t.Errorf("the registrar container port is %v; the image listens on 9000", dig(cp, "containerPort"))
				}
			}
		}
	}
	if !found {
		t.Errorf("the registrar Service's targetPort %v is no port of the Deployment", target)
	}
	p, _ := dig(sp, "port").(float64)
	return svc, int(p)
}

// parsePluginConfig runs the filter's own parser on a configuration as the proxy
// hands it over.
func parsePluginConfig(t *testing.T, where string, configJSON []byte) pluginconfig.Config {
	t.Helper()
	c, err := pluginconfig.Parse(configJSON)
	if err != nil {
		t.Fatalf("%s: the filter refuses its plugin configuration %s: %v", where, configJSON, err)
	}
	return c
}

// TestEnvoyGatewayWiring: the Envoy Gateway manifests fit together and the filter
// accepts their configuration. Envoy Gateway passes `config` to the plugin as the
// JSON text of that field; registrar.cluster must be the cluster Envoy Gateway makes
// for the route rule that sends to the registrar Service,
// httproute/<namespace>/<route>/rule/<index> (internal/gatewayapi/helpers.go,
// irRouteDestinationName, v1.9.0).
func TestEnvoyGatewayWiring(t *testing.T) {
	svc, svcPort := registrarService(t)
	objs := readManifests(t, "envoy-gateway/switchyard.yaml")
	byName := map[string]object{}
	var policies []object
	for _, o := range objs {
		byName[o.kind()+"/"+o.name()] = o
		if o.kind() == "EnvoyExtensionPolicy" {
			policies = append(policies, o)
		}
	}
	if len(policies) != 1 {
		t.Fatalf("want one EnvoyExtensionPolicy, have %d", len(policies))
	}
	pol := policies[0]
	wasm := list(dig(pol.m, "spec", "wasm"))
	if len(wasm) != 1 {
		t.Fatalf("want one wasm extension, have %d", len(wasm))
	}
	w := wasm[0].(map[string]any)
	if w["rootID"] != contract.RootRouter {
		t.Errorf("rootID %v: Envoy Gateway can run only the router root (no singleton)", w["rootID"])
	}
	if dig(w, "code", "type") != "Image" || !strings.Contains(str(w, "code", "image", "url"), "/") {
		t.Errorf("wasm code %v: want the OCI image", w["code"])
	}
	if !regexp.MustCompile(`^[a-f0-9]{64}$`).MatchString(str(w, "code", "image", "sha256")) {
		t.Errorf("sha256 %q: want the 64 hex digits of the manifest digest", str(w, "code", "image", "sha256"))
	}
	cfg := parsePluginConfig(t, pol.String(), mustJSON(t, w["config"]))

	// The targeted route is the one for the router's paths, and it goes to a
	// DynamicResolver Backend.
	targets := list(dig(pol.m, "spec", "targetRefs"))
	if len(targets) != 1 || dig(targets[0], "kind") != "HTTPRoute" {
		t.Fatalf("targetRefs %v: want the one /sys HTTPRoute", targets)
	}
	route, ok := byName["HTTPRoute/"+str(targets[0].(map[string]any), "name")]
	if !ok {
		t.Fatalf("the policy targets HTTPRoute %v, which is not in the file", dig(targets[0], "name"))
	}
	var paths []string
	for _, rule := range list(dig(route.m, "spec", "rules")) {
		for _, m := range list(dig(rule, "matches")) {
			if dig(m, "path", "type") != "PathPrefix" {
				t.Errorf("%s: match %v: the filter's prefixes are path prefixes", route, m)
			}
			paths = append(paths, str(m.(map[string]any), "path", "value"))
		}
		for _, br := range list(dig(rule, "backendRefs")) {
			be, ok := byName["Backend/"+str(br.(map[string]any), "name")]
			if dig(br, "kind") != "Backend" || dig(br, "group") != "gateway.envoyproxy.io" || !ok {
				t.Errorf("%s: backendRef %v: want a Backend of this file", route, br)
				continue
			}
			if dig(be.m, "spec", "type") != "DynamicResolver" {
				t.Errorf("%s: type %v: the targets are only known per request; want DynamicResolver", be, dig(be.m, "spec", "type"))
			}
		}
	}
	sort.Strings(paths)
	want := append([]string(nil), cfg.PathPrefixes...)
	sort.Strings(want)
	if strings.Join(paths, ",") != strings.Join(want, ",") {
		t.Errorf("the targeted route matches %v but the filter acts on %v: they must be the same", paths, want)
	}

	// registrar.cluster names a rule that sends to the registrar Service.
	m := regexp.MustCompile(`^httproute/([^/]+)/([^/]+)/rule/(\d+)$`).FindStringSubmatch(cfg.Registrar.Cluster)
	if m == nil {
		t.Fatalf("registrar.cluster %q is not an Envoy Gateway route-rule cluster name", cfg.Registrar.Cluster)
	}
	reg, ok := byName["HTTPRoute/"+m[2]]
	if !ok || reg.namespace() != m[1] {
		t.Fatalf("registrar.cluster %q: no HTTPRoute %s/%s in the file", cfg.Registrar.Cluster, m[1], m[2])
	}
	var idx int
	fmt.Sscan(m[3], &idx)
	rules := list(dig(reg.m, "spec", "rules"))
	if idx >= len(rules) {
		t.Fatalf("registrar.cluster %q: %s has %d rules", cfg.Registrar.Cluster, reg, len(rules))
	}
	brs := list(dig(rules[idx], "backendRefs"))
	if len(brs) != 1 {
		t.Fatalf("%s rule %d: want the registrar Service as its one backend, have %v", reg, idx, brs)
	}
	br := brs[0].(map[string]any)
	ns := str(br, "namespace")
	if ns == "" {
		ns = reg.namespace()
	}
	if k := str(br, "kind"); (k != "" && k != "Service") || br["name"] != svc.name() || ns != svc.namespace() || br["port"] != float64(svcPort) {
		t.Errorf("%s rule %d sends to %v, not to the registrar Service %s/%s port %d", reg, idx, br, svc.namespace(), svc.name(), svcPort)
	}
	if want := svc.name() + "." + svc.namespace() + ".svc.cluster.local"; cfg.Registrar.Authority != want {
		t.Errorf("registrar.authority %q, want the Service's name %q", cfg.Registrar.Authority, want)
	}
	// Both routes hang on the same Gateway: the cluster exists only in the Envoys
	// that serve the registrar route.
	if fmt.Sprint(dig(route.m, "spec", "parentRefs")) != fmt.Sprint(dig(reg.m, "spec", "parentRefs")) {
		t.Errorf("%s and %s attach to different parents; the router's Envoys would lack the registrar cluster", route, reg)
	}
}

// istioPluginConfig is what Istio hands the plugin: pluginConfig is a
// google.protobuf.Struct, serialised to JSON (istio/istio pilot/pkg/model
// extensions.go), so numbers pass through float64.
func istioPluginConfig(t *testing.T, v any) []byte {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("pluginConfig %v is not an object", v)
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	b, err := protojson.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIstioWiring: the WasmPlugin runs the router root from the OCI image on a Gateway
// of its own, and the filter accepts its configuration as Istio delivers it, with
// registrar.cluster the name Istio gives the registrar Service's port:
// outbound|<port>||<FQDN>.
func TestIstioWiring(t *testing.T) {
	svc, svcPort := registrarService(t)
	objs := readManifests(t, "istio/wasmplugin.yaml")
	byKind := map[string][]object{}
	for _, o := range objs {
		byKind[o.kind()] = append(byKind[o.kind()], o)
	}
	if len(objs) != 2 || len(byKind["WasmPlugin"]) != 1 || len(byKind["Gateway"]) != 1 {
		t.Fatalf("istio/wasmplugin.yaml: want one Gateway and one WasmPlugin, found %d objects", len(objs))
	}
	wp, gw := byKind["WasmPlugin"][0], byKind["Gateway"][0]
	spec, _ := wp.m["spec"].(map[string]any)
	// With FAIL_CLOSE, a module istio-agent cannot fetch becomes a deny-all RBAC filter
	// on every listener the plugin selects; only a Gateway that serves nothing but /sys
	// keeps that failure to /sys. A selector (the shared ingress gateway's labels)
	// would take every route down with it.
	if has(spec, "selector") || has(spec, "targetRef") {
		t.Errorf("%s: selects its proxies by selector or targetRef; want targetRefs to the Gateway of its own", wp)
	}
	refs := list(spec["targetRefs"])
	if len(refs) != 1 {
		t.Fatalf("%s: %d targetRefs, want the one Gateway of this file", wp, len(refs))
	}
	ref, _ := refs[0].(map[string]any)
	if ref["group"] != "gateway.networking.k8s.io" || ref["kind"] != "Gateway" || ref["name"] != gw.name() || wp.namespace() != gw.namespace() {
		t.Errorf("%s: targetRefs %v, want the Gateway %s in the same namespace (Istio refuses cross-namespace references)", wp, ref, gw)
	}
	if c := str(gw.m, "spec", "gatewayClassName"); c != "istio" {
		t.Errorf("%s: gatewayClassName %q, want istio (Istio deploys the gateway for it)", gw, c)
	}
	if spec["pluginName"] != contract.RootRouter {
		t.Errorf("pluginName %v: Istio can run only the router root (no singleton)", spec["pluginName"])
	}
	if t2, _ := spec["type"].(string); t2 != "HTTP" {
		t.Errorf("type %q, want HTTP", t2)
	}
	if u, _ := spec["url"].(string); !strings.HasPrefix(u, "oci://") {
		t.Errorf("url %q: want the oci:// image", u)
	}
	if fs, _ := spec["failStrategy"].(string); fs == "FAIL_OPEN" {
		t.Errorf("failStrategy FAIL_OPEN would pass /sys requests unrouted when the VM fails")
	}
	cfg := parsePluginConfig(t, wp.String(), istioPluginConfig(t, spec["pluginConfig"]))
	want := fmt.Sprintf("outbound|%d||%s.%s.svc.cluster.local", svcPort, svc.name(), svc.namespace())
	if cfg.Registrar.Cluster != want {
		t.Errorf("registrar.cluster %q, want Istio's cluster for the registrar Service %q", cfg.Registrar.Cluster, want)
	}
	if want := svc.name() + "." + svc.namespace() + ".svc.cluster.local"; cfg.Registrar.Authority != want {
		t.Errorf("registrar.authority %q, want the Service's name %q", cfg.Registrar.Authority, want)
	}
}
