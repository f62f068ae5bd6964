// Package web is the server-management page the registrar serves at "/": plain HTML,
// CSS and JavaScript embedded in the binary, talking only to the public /api/ endpoints.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// Handler serves the page at "/" and its assets beside it.
func Handler() http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.FileServerFS(sub)
}
