package registrarapi

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of the registrar's HTTP API (openapi.yaml, in
// YAML). The registrar serves it as JSON at GET /api/openapi.json; every request and
// answer of the registrar's tests is validated against it (internal/testkit/apitest),
// and TestOpenAPILint holds it to a second, independent linter.
//
//go:embed openapi.yaml
var OpenAPI []byte
