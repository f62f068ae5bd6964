package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"switchyard/registrar/web"
)

// get fetches one path from web.Handler() and returns the answer and its body.
func get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	srv := httptest.NewServer(web.Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// The page is three embedded files; each is served with its type.
func TestHandlerServesThePage(t *testing.T) {
	cases := []struct {
		path, contentType, contains string
	}{
		{"/", "text/html", "<title>Switchyard servers</title>"},
		{"/app.js", "text/javascript", `"use strict"`},
		{"/app.css", "text/css", "@media"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			resp, body := get(t, c.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("HTTP %d", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.contentType) {
				t.Errorf("Content-Type %q, want %s", ct, c.contentType)
			}
			if !strings.Contains(body, c.contains) {
				t.Errorf("body lacks %q", c.contains)
			}
		})
	}
}

// Promises of the page that can be read off the files: nothing is loaded from
// another site (no fonts, no CDN), and the script calls only the public API.
func TestPageUsesOnlyItsOwnFilesAndThePublicAPI(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|\burl\(`)
	for _, path := range []string{"/", "/app.js", "/app.css"} {
		t.Run("no external resources in "+path, func(t *testing.T) {
			if _, body := get(t, path); external.MatchString(body) {
				t.Errorf("%s refers to something outside the registrar: %q", path, external.FindString(body))
			}
		})
	}
	t.Run("the script calls only /api/servers... and /api/proxies", func(t *testing.T) {
		_, js := get(t, "/app.js")
		paths := regexp.MustCompile(`["'](/[^"'\s]*)["']`).FindAllStringSubmatch(js, -1)
		if len(paths) == 0 {
			t.Fatal("found no paths in app.js; the test no longer reads it right")
		}
		// Pieces that are not calls: "/targets" and "/targets/" follow a server's path
		// (/api/servers/{host}/targets/...); "/healthz" is the health check path in a
		// curl example's body.
		pieces := map[string]bool{"/targets": true, "/targets/": true, "/healthz": true}
		for _, m := range paths {
			if !strings.HasPrefix(m[1], "/api/servers") && m[1] != "/api/proxies" && !pieces[m[1]] {
				t.Errorf("app.js uses %q, which is not part of the public API (/api/servers, /api/proxies)", m[1])
			}
		}
	})
}
