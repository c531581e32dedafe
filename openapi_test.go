package main

import (
	"context"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/server/openapi/openapitest"
)

// anyParam matches a path parameter in Echo's form (:id, *) or OpenAPI's
// ({id}).
var anyParam = regexp.MustCompile(`:[^/]+|\*|\{[^}]+\}`)

// routeKey is "METHOD /path" with every parameter written {}.
func routeKey(method, path string) string {
	return strings.ToUpper(method) + " " + anyParam.ReplaceAllString(path, "{}")
}

// TestEveryRouteIsDocumented: every route of the service as main wires it
// (server.Routes, so routes added later are covered) is an operation of
// the OpenAPI document (server/openapi/openapi.yaml), every operation is a
// route, and each operation's x-roles are the roles the route lets through
// (rolePolicy, the table TestEveryRouteHasARole probes).
func TestEveryRouteIsDocumented(t *testing.T) {
	doc, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	type op struct {
		path  string
		roles []string
	}
	ops := map[string]op{}
	for path, item := range doc.Paths.Map() {
		for method, o := range item.Operations() {
			var roles []string
			if rs, ok := o.Extensions["x-roles"].([]any); ok {
				for _, r := range rs {
					roles = append(roles, r.(string))
				}
			}
			ops[routeKey(method, path)] = op{path: path, roles: roles}
		}
	}

	app := wiredApp(t)
	routes := map[string]bool{}
	for _, r := range app.server.Routes() {
		if r.Method == echo.RouteNotFound || consolePage(r.Path) {
			continue
		}
		key := routeKey(r.Method, r.Path)
		routes[key] = true
		o, ok := ops[key]
		if !ok {
			t.Errorf("route %s %s has no operation in server/openapi/openapi.yaml", r.Method, r.Path)
			continue
		}
		want, open := rolePolicy(r.Method, r.Path)
		var wantNames []string
		if !open {
			for _, role := range want {
				wantNames = append(wantNames, string(role))
			}
			wantNames = append(wantNames, string(engine.RoleAdmin))
		}
		got := slices.Clone(o.roles)
		slices.Sort(got)
		slices.Sort(wantNames)
		if !slices.Equal(got, wantNames) {
			t.Errorf("%s %s: x-roles %v, the route lets through %v", r.Method, o.path, got, wantNames)
		}
	}
	for key, o := range ops {
		if !routes[key] {
			t.Errorf("operation %s (%s) is not a route of the service", key, o.path)
		}
	}
	t.Logf("%d routes, %d operations", len(routes), len(ops))
}

// consolePage reports whether path is the console's: HTML pages behind a
// session cookie (docs/console.md), not part of the JSON API the document
// describes. TestEveryRouteHasARole covers their roles.
func consolePage(path string) bool {
	return path == "/" || path == "/console" || strings.HasPrefix(path, "/console/")
}

// wiredApp is the service as main wires it, on a fresh data directory,
// with the given extra flags; authentication is on unless they hold --dev.
// Everything it starts is stopped when the test ends.
func wiredApp(t *testing.T, flags ...string) *app {
	t.Helper()
	dir := t.TempDir()
	c, err := parseConfig(append([]string{"--data", dir, "--addr", "127.0.0.1:0"}, flags...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(flags, "--dev") {
		c.Dev = false
	}
	c.AdminKey = ""
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	open := openBadger
	if c.Cluster.Enabled() {
		open = openCluster
	}
	st, err := open(ctx, c, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.close(context.Background()) })
	a, err := wire(ctx, c, st, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.start(ctx); err != nil {
		t.Fatal(err)
	}
	fctx, stopFollow := context.WithCancel(ctx)
	followed := make(chan struct{})
	go func() { defer close(followed); a.follow(fctx) }()
	t.Cleanup(func() { stopFollow(); <-followed })
	t.Cleanup(func() { _ = a.backtests.Close(context.Background()) })
	t.Cleanup(func() { _ = a.reviews.Close(context.Background()) })
	t.Cleanup(func() { _ = a.notifier.Close(context.Background()) })
	return a
}
