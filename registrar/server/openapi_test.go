package server

import (
	"encoding/json"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"switchyard/internal/registrarapi"
)

// GET /api/openapi.json serves the document (openapi.yaml as JSON) without the token,
// where every other /api/ call needs it, and the page's "How to call the API" links
// to it.
func TestOpenAPIServed(t *testing.T) {
	reg := startRegistrar(t, regOptions{token: "t0ken"})
	r := call(t, "GET", reg.URL+"/api/openapi.json", "")
	if r.Code != 200 || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/openapi.json without the token: %d %s", r.Code, r.Header)
	}
	var doc struct {
		OpenAPI string                     `json:"openapi"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("not an OpenAPI 3.1 document: %v %.200s", err, r.Body)
	}
	for _, p := range []string{"/api/servers", "/api/servers/{host}/targets/{address}", "/api/proxies", "/api/export", "/api/import", "/v1/routes", "/healthz", "/metrics", "/api/openapi.json"} {
		if doc.Paths[p] == nil {
			t.Errorf("the served document has no path %s", p)
		}
	}
	want, err := yaml.YAMLToJSON(registrarapi.OpenAPI)
	if err != nil || string(want) != string(r.Body) {
		t.Fatalf("the served document is not openapi.yaml (%v)", err)
	}
	if r := call(t, "GET", reg.URL+"/api/servers", ""); r.Code != 401 {
		t.Fatalf("GET /api/servers without the token: %d", r.Code)
	}
	page := call(t, "GET", reg.URL+"/", "")
	if !strings.Contains(string(page.Body), `<a id="openapi-link" href="/api/openapi.json">`) {
		t.Fatal(`the page's "How to call the API" does not link to /api/openapi.json`)
	}
}
