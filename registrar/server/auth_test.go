package server

import (
	"net/http"
	"testing"
)

func TestBearerToken(t *testing.T) {
	const token = "s3cret-token"
	reg := startRegistrar(t, regOptions{token: token})
	good := "Bearer " + token
	cases := []struct {
		name, method, path, body, auth string
		code                           int
	}{
		{"list without token", "GET", "/api/servers", "", "", 401},
		{"list with wrong token", "GET", "/api/servers", "", "Bearer nope", 401},
		{"list with token as prefix", "GET", "/api/servers", "", "Bearer " + token[:5], 401},
		{"list with longer token", "GET", "/api/servers", "", good + "x", 401},
		{"list with Basic scheme", "GET", "/api/servers", "", "Basic " + token, 401},
		{"list with bare token", "GET", "/api/servers", "", token, 401},
		{"register without token", "POST", "/api/servers/register", regBody("web-1", "10.1.2.3", "logs"), "", 401},
		{"routes without token", "GET", "/v1/routes", "", "", 401},
		{"list with token", "GET", "/api/servers", "", good, 200},
		{"scheme is case-insensitive", "GET", "/api/servers", "", "bearer " + token, 200},
		{"routes with token", "GET", "/v1/routes", "", good, 200},
		{"register with token", "POST", "/api/servers/register", regBody("web-1", "10.1.2.3", "logs"), good, 200},
		{"page stays open", "GET", "/", "", "", 200},
		{"healthz stays open", "GET", "/healthz", "", "", 200},
		{"metrics stay open", "GET", "/metrics", "", "", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.auth != "" {
				hdr = []string{"Authorization", c.auth}
			}
			r := call(t, c.method, reg.URL+c.path, c.body, hdr...)
			if r.Code != c.code {
				t.Fatalf("status %d, want %d: %s", r.Code, c.code, r.Body)
			}
			if c.code == http.StatusUnauthorized {
				if r.Header.Get("WWW-Authenticate") != "Bearer" {
					t.Errorf("WWW-Authenticate = %q, want Bearer", r.Header.Get("WWW-Authenticate"))
				}
				if res := r.Result(t); res.Success || res.Error == "" {
					t.Errorf("401 body %s", r.Body)
				}
			}
		})
	}
	// Only the one authorized registration got through.
	if rev := reg.Store.Current().Revision(); rev != 1 {
		t.Errorf("revision %d after one authorized write, want 1", rev)
	}
}
