package engine_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/riskengine/risk"

// TestDependencyDirection keeps the house shape: engine imports only the
// standard library; rules and features never import server or admin; echo
// lives only in server and admin; nothing imports main.
func TestDependencyDirection(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("go tool not found: %v", err)
	}
	tests := []struct {
		pkg       string
		forbidden []string // import path prefixes
		stdOnly   bool
	}{
		{pkg: module + "/engine", stdOnly: true},
		{pkg: module + "/rules", forbidden: []string{module + "/features", module + "/server", module + "/admin", "github.com/labstack/echo", "github.com/dgraph-io/badger"}},
		{pkg: module + "/features", forbidden: []string{module + "/rules", module + "/server", module + "/admin", "github.com/labstack/echo", "github.com/expr-lang/expr"}},
		{pkg: module + "/server", forbidden: []string{module + "/rules", module + "/features", module + "/admin", "github.com/dgraph-io/badger", "github.com/expr-lang/expr"}},
		{pkg: module + "/admin", forbidden: []string{module + "/server"}},
		{pkg: module + "/admin/review", forbidden: []string{module + "/server"}},
		{pkg: module + "/features/lists", forbidden: []string{module + "/rules", module + "/server", module + "/admin", "github.com/labstack/echo", "github.com/expr-lang/expr"}},
		{pkg: module + "/server/console", forbidden: []string{module + "/rules", module + "/features", module + "/admin", "github.com/dgraph-io/badger", "github.com/expr-lang/expr"}},
		{pkg: module + "/server/client", stdOnly: true},
		{pkg: module + "/admin/notify", forbidden: []string{module + "/server"}},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", tt.pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			for _, dep := range strings.Fields(string(out)) {
				if dep == tt.pkg {
					continue
				}
				if tt.stdOnly && !strings.HasPrefix(dep, tt.pkg+"/") {
					t.Errorf("%s imports %s; it may import only the standard library", tt.pkg, dep)
				}
				for _, f := range tt.forbidden {
					if strings.HasPrefix(dep, f) {
						t.Errorf("%s depends on %s", tt.pkg, dep)
					}
				}
			}
		})
	}
}
