package domain_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDomainImports keeps domain/ pure: its non-test code may import only the
// standard library, shopspring/decimal and other domain packages.
func TestDomainImports(t *testing.T) {
	allowed := func(path string) bool {
		first, _, _ := strings.Cut(path, "/")
		return !strings.Contains(first, ".") || // standard library
			path == "github.com/shopspring/decimal" ||
			strings.HasPrefix(path, "github.com/livecore/livecore/domain")
	}
	files, bad := 0, 0
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		files++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !allowed(path) {
				bad++
				t.Errorf("%s imports %s: domain/ may import only the standard library and shopspring/decimal", p, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("checked only %d files: is the walk rooted at domain/?", files)
	}
	t.Logf("checked %d domain files: %d forbidden imports", files, bad)
}
