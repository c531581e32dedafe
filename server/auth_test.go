package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

// TestRequire pins the authentication contract of every server route:
// 401 without a valid key, 403 with a key of another role, through with the
// right role or an admin key. (main's route test covers every route the
// wired service has, admin routes included.)
func TestRequire(t *testing.T) {
	e := newEdge(t, edgeOptions{auth: roleKeys, metrics: true})
	tests := []struct {
		method, path string
		body         any
		allowed      []engine.Role // admin is always allowed
	}{
		{"POST", "/v1/decisions", payment("t_auth"), []engine.Role{engine.RoleGateway}},
		{"GET", "/v1/decisions", nil, []engine.Role{engine.RoleAnalyst, engine.RoleAuditor}},
		{"GET", "/v1/decisions/dec_x", nil, []engine.Role{engine.RoleAnalyst, engine.RoleAuditor}},
		{"GET", "/metrics", nil, []engine.Role{engine.RoleMetrics}},
		{"GET", "/debug/pprof/", nil, nil},
		{"GET", "/debug/pprof/cmdline", nil, nil},
	}
	roles := []engine.Role{engine.RoleGateway, engine.RoleAnalyst, engine.RoleAuditor, engine.RoleMetrics, engine.RoleAdmin}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			for _, key := range []string{"", "nobody-key", "gateway"} {
				code, h, body := e.send(key, tt.method, tt.path, tt.body)
				if code != http.StatusUnauthorized {
					t.Errorf("key %q: %d %s, want 401", key, code, body)
				}
				if got := h.Get("WWW-Authenticate"); got != `Bearer realm="risk"` {
					t.Errorf("key %q: WWW-Authenticate = %q", key, got)
				}
			}
			for _, role := range roles {
				want := role == engine.RoleAdmin
				for _, r := range tt.allowed {
					want = want || r == role
				}
				code, _, body := e.send(string(role)+"-key", tt.method, tt.path, tt.body)
				switch {
				case want && (code == http.StatusUnauthorized || code == http.StatusForbidden):
					t.Errorf("%s: %d %s, want through", role, code, body)
				case !want && code != http.StatusForbidden:
					t.Errorf("%s: %d %s, want 403", role, code, body)
				}
			}
		})
	}
}

func TestRequireOpenRoutesAndSchemes(t *testing.T) {
	e := newEdge(t, edgeOptions{auth: roleKeys})
	for _, path := range []string{"/healthz", "/readyz", "/openapi.json"} {
		if code, _, body := e.send("", "GET", path, nil); code != http.StatusOK {
			t.Errorf("%s without a key = %d %s, want 200", path, code, body)
		}
	}
	req, _ := http.NewRequest("GET", e.url+"/v1/decisions", nil)
	req.Header.Set("Authorization", "Basic YWRtaW46YWRtaW4=")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("basic auth = %d, want 401", resp.StatusCode)
	}
}

// TestRequireBackendDown: a key store that cannot answer is 503, never a
// pass.
func TestRequireBackendDown(t *testing.T) {
	down := authFunc(func(context.Context, string) (engine.Principal, error) {
		return engine.Principal{}, fmt.Errorf("key store: %w", engine.ErrUnavailable)
	})
	e := newEdge(t, edgeOptions{auth: down})
	if code, _, body := e.send("admin-key", "GET", "/v1/decisions", nil); code != http.StatusServiceUnavailable {
		t.Errorf("got %d %s, want 503", code, body)
	}
}

// TestPrincipalReachesHandlers: the key's name is the actor of changes
// (audit trail) and is in the access record.
func TestPrincipalReachesHandlers(t *testing.T) {
	e := newEdge(t, edgeOptions{auth: roleKeys})
	e.srv.Group("/test").GET("/whoami", func(c echo.Context) error {
		return c.String(http.StatusOK, engine.Actor(c.Request().Context()))
	}, e.srv.Require(engine.RoleAnalyst))
	if code, _, body := e.send("analyst-key", "GET", "/test/whoami", nil); code != http.StatusOK || string(body) != "analyst-client" {
		t.Errorf("whoami = %d %q, want analyst-client", code, body)
	}
	recs := e.accessRecords()
	if len(recs) != 1 || recs[0]["key"] != "analyst-client" {
		t.Errorf("access records = %v, want one with key analyst-client", recs)
	}
}

// TestDevMode: with no Authenticator every request is the admin "dev".
func TestDevMode(t *testing.T) {
	e := newEdge(t, edgeOptions{})
	e.srv.Group("/test").GET("/whoami", func(c echo.Context) error {
		p, _ := engine.PrincipalFrom(c.Request().Context())
		return c.String(http.StatusOK, p.Name+"/"+string(p.Role))
	}, e.srv.Require(engine.RoleAdmin))
	if code, _, body := e.send("", "GET", "/test/whoami", nil); code != http.StatusOK || string(body) != "dev/admin" {
		t.Errorf("dev whoami = %d %q, want dev/admin", code, body)
	}
}

// TestBearerSchemeIsCaseInsensitive: the Authorization scheme is matched
// case-insensitively (RFC 7235 section 2.1), with one or more spaces before
// the key; other schemes and an empty key are 401.
func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	e := newEdge(t, edgeOptions{auth: roleKeys})
	tests := []struct {
		header string
		want   int
	}{
		{"Bearer analyst-key", http.StatusOK},
		{"bearer analyst-key", http.StatusOK},
		{"BEARER analyst-key", http.StatusOK},
		{"bEaReR analyst-key", http.StatusOK},
		{"Bearer   analyst-key", http.StatusOK},
		{"Bearer", http.StatusUnauthorized},
		{"Bearer ", http.StatusUnauthorized},
		{"Bearerx analyst-key", http.StatusUnauthorized},
		{"Basic analyst-key", http.StatusUnauthorized},
		{"analyst-key", http.StatusUnauthorized},
		{"bearer nobody-key", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.header, func(t *testing.T) {
			req, err := http.NewRequest("GET", e.url+"/v1/decisions", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", tt.header)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("Authorization: %q = %d, want %d", tt.header, resp.StatusCode, tt.want)
			}
		})
	}
}
