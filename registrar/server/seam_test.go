package server

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The server knows the store.Store interface only: registrar/main.go reads the flags
// and opens the store. No non-test file here imports the etcd store or calls
// store.Open.
func TestServerOpensNoStore(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "switchyard/registrar/store/etcdstore" {
				t.Errorf("%s imports %s; the registrar command opens the store and hands it to New", name, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "store" && sel.Sel.Name == "Open" {
					t.Errorf("%s calls store.Open; the registrar command opens the store and hands it to New", name)
				}
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("found no Go files to check")
	}
}
