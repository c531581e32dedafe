package server

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

// Authenticator resolves a bearer token to a principal. It returns an error
// wrapping engine.ErrNotFound for an unknown or revoked key.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (engine.Principal, error)
}

// Require returns middleware that lets a request through only with a valid
// bearer key of one of roles (admin keys pass everywhere). With no
// Authenticator configured (dev mode) every request acts as a dev admin.
func (s *Server) Require(roles ...engine.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			var p engine.Principal
			if s.cfg.Auth == nil {
				p = engine.Principal{Name: "dev", Role: engine.RoleAdmin}
			} else {
				token, ok := strings.CutPrefix(req.Header.Get(echo.HeaderAuthorization), "Bearer ")
				if !ok || token == "" {
					c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="risk"`)
					return &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "send an API key as Authorization: Bearer <key>"}
				}
				var err error
				p, err = s.cfg.Auth.Authenticate(req.Context(), token)
				if errors.Is(err, engine.ErrNotFound) {
					return &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "unknown or revoked API key"}
				}
				if err != nil {
					return err
				}
			}
			if p.Role != engine.RoleAdmin && !slices.Contains(roles, p.Role) {
				return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "this API key's role may not do this"}
			}
			c.Set(ctxPrincipal, p)
			c.SetRequest(req.WithContext(engine.WithPrincipal(req.Context(), p)))
			return next(c)
		}
	}
}

const ctxPrincipal = "principal"
