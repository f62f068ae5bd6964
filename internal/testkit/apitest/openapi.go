package apitest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	"github.com/pb33f/libopenapi-validator/paths"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"switchyard/internal/registrarapi"
)

// The registrar's OpenAPI document (registrarapi.OpenAPI), loaded once: its model
// (to find a path's operations) and a validator (pb33f/libopenapi-validator, which
// knows OpenAPI 3.1 and JSON Schema 2020-12). Security is not validated: a registrar
// without a token accepts calls without one, and 401s are checked as answers.
var spec = sync.OnceValues(func() (*specCheck, error) {
	doc, err := libopenapi.NewDocument(registrarapi.OpenAPI)
	if err != nil {
		return nil, err
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		return nil, err
	}
	opts := []config.Option{config.WithoutSecurityValidation(), config.WithFormatAssertions()}
	v, errs := validator.NewValidator(doc, opts...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("%v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		return nil, fmt.Errorf("the document is not valid OpenAPI: %v", verrs)
	}
	return &specCheck{model: &m.Model, v: v, opts: config.NewValidationOptions(opts...)}, nil
})

type specCheck struct {
	mu    sync.Mutex // the validator is not documented as safe for concurrent use
	model *v3.Document
	v     validator.Validator
	opts  *config.ValidationOptions
}

// described says whether a path is one of the registrar's API paths, which the
// document must describe; the page and its files are not part of the API.
func described(path string) bool {
	return strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/v1/") || path == "/healthz" || path == "/metrics"
}

// CheckOpenAPI holds one exchange with the registrar to its OpenAPI document
// (internal/registrarapi/openapi.yaml), failing t when they disagree:
//
//   - a path the document does not name must be answered 404, and a method it does not
//     name for a path 405;
//   - a request the registrar accepted (2xx, 304) must be one the document describes;
//   - every answer must be one the document describes for its status.
//
// A refused request is not validated: tests send bad ones on purpose. HEAD is checked
// as GET without a body. Benchmarks are not checked: their figures time calls made
// through Call, and the tests make the same calls.
func CheckOpenAPI(t testing.TB, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	t.Helper()
	if _, bench := t.(*testing.B); bench || !described(req.URL.Path) {
		return
	}
	s, err := spec()
	if err != nil {
		t.Fatalf("the registrar's OpenAPI document does not load: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	what := req.Method + " " + req.URL.RequestURI()
	method := req.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	probe := req.Clone(req.Context())
	probe.Method = method
	item, _, template := paths.FindPath(probe, s.model, s.opts)
	if strings.Contains(template, "{") {
		// A path the document names literally is that path, not a template that
		// also matches it (/api/servers/register is not /api/servers/{host}).
		if lit := s.model.Paths.PathItems.GetOrZero(req.URL.Path); lit != nil {
			item = lit
		}
	}
	if item == nil {
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("OpenAPI: %s answered %d, but openapi.yaml names no such path (document it, or answer 404)", what, resp.StatusCode)
		}
		return
	}
	op := item.GetOperations().GetOrZero(strings.ToLower(method))
	if op == nil {
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("OpenAPI: %s answered %d, but openapi.yaml has no %s for this path (document it, or answer 405)", what, resp.StatusCode, method)
		}
		return
	}
	if req.Method == http.MethodHead {
		if op.Responses.Codes.GetOrZero(fmt.Sprint(resp.StatusCode)) == nil {
			t.Errorf("OpenAPI: %s answered %d, which openapi.yaml does not list for GET", what, resp.StatusCode)
		}
		return
	}
	accepted := resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusNotModified
	if accepted {
		probe.Body = io.NopCloser(bytes.NewReader(reqBody))
		if ok, errs := s.v.ValidateHttpRequestSync(probe); !ok {
			t.Errorf("OpenAPI: the registrar accepted %s (%d) with body %s, but openapi.yaml does not describe that request:%s", what, resp.StatusCode, clip(reqBody), listErrors(errs))
		}
	}
	probe.Body = io.NopCloser(bytes.NewReader(reqBody))
	answer := *resp
	answer.Body = io.NopCloser(bytes.NewReader(respBody))
	if ok, errs := s.v.ValidateHttpResponse(probe, &answer); !ok {
		t.Errorf("OpenAPI: %s answered %d %s, which openapi.yaml does not describe:%s", what, resp.StatusCode, clip(respBody), listErrors(errs))
	}
}

func listErrors[E error](errs []E) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("\n\t")
		b.WriteString(e.Error())
	}
	return b.String()
}

// clip shortens a body for a failure message.
func clip(b []byte) string {
	const most = 600
	if len(b) > most {
		return string(b[:most]) + "…"
	}
	return string(b)
}
