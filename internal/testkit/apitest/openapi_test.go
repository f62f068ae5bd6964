package apitest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps what the check reports instead of failing.
type recorder struct {
	testing.TB
	failures []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, a ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, a...))
}
func (r *recorder) Fatalf(format string, a ...any) { r.Errorf(format, a...) }

// The check fails a registrar and a document that disagree: an answer with a field
// the document does not have, a path or a method it does not name that is served, a
// status it does not list, an accepted request it does not describe. Answers that
// match pass.
func TestCheckOpenAPIFindsDrift(t *testing.T) {
	answer := func(code int, body string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			w.Write([]byte(body))
		}))
	}
	srv := `{"host":"web-1","ipAddress":"10.0.0.1:80","serviceName":"s","updatedAt":"2026-01-02T03:04:05Z","targets":[{"address":"10.0.0.1:80","weight":1,"state":"active","health":"up"}]}`
	cases := []struct {
		name, method, path, body string
		code                     int
		answer                   string
		want                     string // "" passes
	}{
		{"documented list", "GET", "/api/servers", "", 200, `{"result":{"success":true,"revision":3,"servers":[` + srv + `]}}`, ""},
		{"documented refusal", "GET", "/api/servers/web-9", "", 404, `{"result":{"success":false,"error":"server 'web-9' is not registered"}}`, ""},
		{"an undocumented field", "GET", "/api/servers", "", 200, `{"result":{"success":true,"revision":3,"servers":[],"extra":1}}`, "does not describe"},
		{"a field missing", "GET", "/api/servers/web-1", "", 200, `{"result":{"success":true,"server":` + srv + `}}`, "does not describe"},
		{"an unlisted status", "GET", "/api/servers", "", 418, `{"result":{"success":false,"error":"x"}}`, "does not describe"},
		{"a served path it does not name", "GET", "/api/frobs", "", 200, `{}`, "names no such path"},
		{"a served method it does not name", "PATCH", "/api/servers", "", 200, `{}`, "has no PATCH for this path"},
		{"an accepted request it does not describe", "POST", "/api/servers/register", `{"host":"web-1","ipAddress":"10.0.0.1:80","serviceName":"s","colour":"blue"}`, 200,
			`{"result":{"success":true,"revision":1,"changed":true,"server":` + srv + `}}`, "does not describe that request"},
		{"a refused bad request", "POST", "/api/servers/register", `{"colour":"blue"}`, 400, `{"result":{"success":false,"error":"colour: unknown field"}}`, ""},
		{"the page", "GET", "/app.js", "", 200, `x`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := answer(c.code, c.answer)
			defer s.Close()
			rec := &recorder{TB: t}
			Call(rec, c.method, s.URL+c.path, c.body)
			got := strings.Join(rec.failures, "\n")
			if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
				t.Fatalf("check reported %q, want %q", got, c.want)
			}
		})
	}
}
