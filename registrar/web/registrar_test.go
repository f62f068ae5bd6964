package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"switchyard/internal/registrarapi"
	"switchyard/internal/testkit/proc"
)

// registrar is the real registrar binary, started on a free loopback port with its
// own data file for one test (proc.Start), and stopped when the test ends; its
// output is shown when the test fails.
type registrar struct {
	URL   string // http://127.0.0.1:port
	token string // "" when started without -token
}

// startRegistrar runs bin/registrar with -listen 127.0.0.1:0 and waits for the
// address it chose. token, when not empty, is passed as -token.
func startRegistrar(t *testing.T, token string) *registrar {
	t.Helper()
	args := []string{"-data", filepath.Join(t.TempDir(), "servers.json")}
	if token != "" {
		args = append(args, "-token", token)
	}
	p := proc.StartRegistrar(t, args...)
	return &registrar{URL: p.URL(), token: token}
}

// apiServer is one entry of GET /api/servers.
type apiServer struct {
	Name      string                `json:"host"`
	Target    string                `json:"ipAddress"`
	Service   string                `json:"serviceName"`
	UpdatedAt string                `json:"updatedAt"`
	Targets   []registrarapi.Target `json:"targets"`
}

// apiResult is the "result" object every /api/ answer carries.
type apiResult struct {
	Success  bool                 `json:"success"`
	Error    string               `json:"error"`
	Revision int64                `json:"revision"`
	Servers  []apiServer          `json:"servers"`
	Server   *registrarapi.Server `json:"server"`
}

// call sends one API request over plain HTTP (with the token when the registrar has
// one) and returns the status and the decoded result.
func (r *registrar) call(t *testing.T, method, path string, body any) (int, apiResult) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, r.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var doc struct {
		Result apiResult `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("%s %s: HTTP %d, body is not the API's JSON: %v", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, doc.Result
}

// register creates or replaces a server through the API, for a case's starting state.
func (r *registrar) register(t *testing.T, name, target, service string) {
	t.Helper()
	r.registerBody(t, name, map[string]any{"host": name, "ipAddress": target, "serviceName": service})
}

// registerSet creates or replaces a server with a whole target set.
func (r *registrar) registerSet(t *testing.T, name, service string, targets ...registrarapi.Target) {
	t.Helper()
	set := make([]map[string]any, len(targets))
	for i, tg := range targets {
		set[i] = map[string]any{"address": tg.Address, "weight": tg.Weight, "state": tg.State}
	}
	r.registerBody(t, name, map[string]any{"host": name, "serviceName": service, "targets": set})
}

func (r *registrar) registerBody(t *testing.T, name string, body map[string]any) {
	t.Helper()
	status, res := r.call(t, http.MethodPost, "/api/servers/register", body)
	if status != http.StatusOK || !res.Success {
		t.Fatalf("registering %s: HTTP %d %+v", name, status, res)
	}
}

// remove deletes a server through the API.
func (r *registrar) remove(t *testing.T, name string) {
	t.Helper()
	if status, res := r.call(t, http.MethodDelete, "/api/servers/"+name, nil); status != http.StatusOK {
		t.Fatalf("deleting %s: HTTP %d %+v", name, status, res)
	}
}

// servers lists the table over HTTP: what the page shows must be what the API says.
func (r *registrar) servers(t *testing.T) (int64, map[string]apiServer) {
	t.Helper()
	status, res := r.call(t, http.MethodGet, "/api/servers", nil)
	if status != http.StatusOK || !res.Success {
		t.Fatalf("GET /api/servers: HTTP %d %+v", status, res)
	}
	byName := make(map[string]apiServer, len(res.Servers))
	for _, s := range res.Servers {
		byName[s.Name] = s
	}
	return res.Revision, byName
}

func (s apiServer) String() string {
	return fmt.Sprintf("%s → %s (%s)", s.Name, s.Target, s.Service)
}
