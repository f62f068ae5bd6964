package server

import (
	"net/http"
	"sync"

	"sigs.k8s.io/yaml"

	"switchyard/internal/registrarapi"
)

// openAPIJSON is registrarapi.OpenAPI as JSON, converted once.
var openAPIJSON = sync.OnceValue(func() []byte {
	b, err := yaml.YAMLToJSON(registrarapi.OpenAPI)
	if err != nil {
		// The document is embedded and TestOpenAPIServed converts it: a failure here
		// is a build that skipped the tests.
		panic("registrarapi.OpenAPI is not valid YAML: " + err.Error())
	}
	return b
})

// serveOpenAPI is GET /api/openapi.json: the API's OpenAPI 3.1 document. It needs no
// token: it describes the API and holds nothing of the table, and tools read it
// before they are given a token.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(openAPIJSON())
}
