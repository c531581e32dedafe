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
		// limits must not import features (features imports limits); no
		// Badger keeps it so, since features is the one Badger owner.
		{pkg: module + "/features/limits", forbidden: []string{module + "/rules", module + "/server", module + "/admin", "github.com/labstack/echo", "github.com/expr-lang/expr", "github.com/dgraph-io/badger"}},
		{pkg: module + "/server/console", forbidden: []string{module + "/rules", module + "/features", module + "/admin", "github.com/dgraph-io/badger", "github.com/expr-lang/expr"}},
		{pkg: module + "/server/client", stdOnly: true},
		{pkg: module + "/admin/notify", forbidden: []string{module + "/server"}},
		// Each outside system behind its own package.
		{pkg: module + "/features/postgres", forbidden: []string{module + "/rules", module + "/server", module + "/admin", "github.com/redis/", "github.com/dgraph-io/badger"}},
		{pkg: module + "/features/redisstate", forbidden: []string{module + "/rules", module + "/server", module + "/admin", "github.com/jackc/pgx"}},
		{pkg: module + "/features/cluster", forbidden: []string{module + "/rules", module + "/server", module + "/admin", "github.com/jackc/pgx", "github.com/redis/"}},
		{pkg: module + "/features/kv", stdOnly: true},
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

// TestOneOwnerOfBadger: package features holds the one Badger
// implementation of the storage boundary; every other package, tests
// included, reaches stored state through kv.DB and the engine's ports.
func TestOneOwnerOfBadger(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}} {{join .TestImports \" \"}} {{join .XTestImports \" \"}}", module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	var owners []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, "github.com/dgraph-io/badger") {
				owners = append(owners, fields[0])
				break
			}
		}
	}
	if len(owners) != 1 || owners[0] != module+"/features" {
		t.Errorf("packages importing badger: %v; want only %s/features", owners, module)
	}
}
