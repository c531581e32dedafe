package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

// allRoles are the roles of API keys, admin last.
var allRoles = []engine.Role{engine.RoleGateway, engine.RoleAnalyst, engine.RoleAuditor, engine.RoleMetrics, engine.RoleAdmin}

// rolePolicy is the role map of docs/security.md: which roles besides
// admin may call a route, or open for routes that need no key. Routes
// added later fall under the general rules at the end, so a new route is
// checked without touching this test; a route meant to differ needs a line
// here, which is the review of its roles.
func rolePolicy(method, path string) (roles []engine.Role, open bool) {
	var (
		gateway   = engine.RoleGateway
		analyst   = engine.RoleAnalyst
		auditor   = engine.RoleAuditor
		adminOnly []engine.Role
	)
	switch {
	case path == "/healthz" || path == "/readyz":
		return nil, true
	case path == "/metrics":
		return []engine.Role{engine.RoleMetrics}, false
	case strings.HasPrefix(path, "/debug/"), strings.HasPrefix(path, "/admin/keys"), path == "/admin/backup":
		return adminOnly, false
	case method == http.MethodPost && path == "/v1/decisions":
		return []engine.Role{gateway}, false
	case method == http.MethodPost && strings.HasSuffix(path, "/feedback"):
		return []engine.Role{gateway, analyst}, false
	case strings.HasPrefix(path, "/v1/") && method == http.MethodGet:
		return []engine.Role{analyst, auditor}, false
	case strings.HasPrefix(path, "/admin/backtests"):
		return []engine.Role{analyst}, false
	case strings.HasPrefix(path, "/admin/") && method == http.MethodGet:
		return []engine.Role{analyst, auditor}, false
	case strings.HasPrefix(path, "/admin/"):
		return []engine.Role{analyst}, false
	}
	return adminOnly, false
}

var pathParam = regexp.MustCompile(`:[^/]+|\*`)

// TestEveryRouteHasARole probes every route of the service as main wires
// it (server.Routes, so routes added later are covered): no key and an
// unknown key are 401, a key of a role outside rolePolicy is 403, a key of
// a role inside it (and an admin key) gets through.
func TestEveryRouteHasARole(t *testing.T) {
	dir := t.TempDir()
	c, err := parseConfig([]string{"--data", dir, "--addr", "127.0.0.1:0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c.Dev, c.AdminKey = false, ""
	log := slog.New(slog.DiscardHandler)
	store := features.New(features.Options{Dir: dir, CompileFilter: compileFilter, LimitsEntity: c.LimitsEntity, Log: log})
	ctx := context.Background()
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	app, err := wire(ctx, c, store, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.backtests.Close(context.Background()) })
	keys := map[engine.Role]string{}
	for _, role := range allRoles {
		_, secret, err := app.keys.Create(ctx, "probe-"+string(role), role)
		if err != nil {
			t.Fatal(err)
		}
		keys[role] = secret
	}
	ts := httptest.NewServer(app.server.Handler())
	t.Cleanup(ts.Close)
	call := func(method, path, key string) int {
		t.Helper()
		req, err := http.NewRequest(method, ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	routes := app.server.Routes()
	seen := 0
	for _, r := range routes {
		if r.Method == echo.RouteNotFound {
			continue
		}
		seen++
		path := pathParam.ReplaceAllString(r.Path, "x")
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			want, open := rolePolicy(r.Method, r.Path)
			if open {
				if code := call(r.Method, path, ""); code != http.StatusOK {
					t.Errorf("open route without a key = %d, want 200", code)
				}
				return
			}
			for _, key := range []string{"", "rk_unknownkey0000000000000000000000000000000000000000"} {
				if code := call(r.Method, path, key); code != http.StatusUnauthorized {
					t.Errorf("key %q = %d, want 401", key, code)
				}
			}
			for _, role := range allRoles {
				code := call(r.Method, path, keys[role])
				allowed := role == engine.RoleAdmin || slices.Contains(want, role)
				switch {
				case allowed && (code == http.StatusUnauthorized || code == http.StatusForbidden):
					t.Errorf("%s key = %d, want it through (role map: %v and admin)", role, code, want)
				case !allowed && code != http.StatusForbidden:
					t.Errorf("%s key = %d, want 403 (role map: %v and admin)", role, code, want)
				}
			}
		})
	}
	// The service has at least the routes of this issue.
	for _, must := range []string{"POST /v1/decisions", "GET /metrics", "GET /debug/pprof/*", "POST /admin/keys", "GET /admin/keys", "DELETE /admin/keys/:id", "GET /admin/backup"} {
		if !slices.ContainsFunc(routes, func(r *echo.Route) bool { return r.Method+" "+r.Path == must }) {
			t.Errorf("route %s is not registered", must)
		}
	}
	t.Logf("%d routes checked", seen)
}
