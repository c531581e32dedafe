package server

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

// Authenticator resolves a bearer token to a principal. It returns an error
// wrapping engine.ErrNotFound for an unknown or revoked key. It is called on
// every authenticated request, so it must be fast (admin.Keys answers from
// memory) and safe for concurrent use.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (engine.Principal, error)
}

// devPrincipal is who every request is in dev mode (no Authenticator).
var devPrincipal = engine.Principal{KeyID: "dev", Name: "dev", Role: engine.RoleAdmin}

// Require returns middleware that lets a request through only with a valid
// bearer key of one of roles (admin keys pass everywhere). With no
// Authenticator configured (dev mode) every request acts as a dev admin.
//
// In order: no or malformed Authorization header, or an unknown or revoked
// key, is 401 unauthorized; a key over its rate limit is 429 rate_limited
// with Retry-After; a key of another role is 403 forbidden. The principal
// is then in the request context (engine.PrincipalFrom) for the audit
// trail.
func (s *Server) Require(roles ...engine.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			p, err := s.authenticate(req)
			if err != nil {
				if errors.Is(err, errUnauthorized) {
					c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="risk"`)
				}
				return err
			}
			if ok, wait := s.limiter.allow(p.KeyID); !ok {
				c.Response().Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
				return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: "this API key is over its rate limit; retry later"}
			}
			c.Set(ctxPrincipal, p)
			if p.Role != engine.RoleAdmin && !slices.Contains(roles, p.Role) {
				return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "this API key's role may not do this"}
			}
			c.SetRequest(req.WithContext(engine.WithPrincipal(req.Context(), p)))
			return next(c)
		}
	}
}

// errUnauthorized marks a request without a valid key.
var errUnauthorized = errors.New("unauthorized")

// authenticate returns the principal of req's bearer key.
func (s *Server) authenticate(req *http.Request) (engine.Principal, error) {
	if s.cfg.Auth == nil {
		return devPrincipal, nil
	}
	token, ok := bearerToken(req.Header.Get(echo.HeaderAuthorization))
	if !ok {
		return engine.Principal{}, &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "send an API key as Authorization: Bearer <key>", Err: errUnauthorized}
	}
	p, err := s.cfg.Auth.Authenticate(req.Context(), token)
	if errors.Is(err, engine.ErrNotFound) {
		return engine.Principal{}, &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "unknown or revoked API key", Err: errUnauthorized}
	}
	if err != nil {
		return engine.Principal{}, err
	}
	if p.KeyID == "" {
		p.KeyID = p.Name // rate limits are per key
	}
	return p, nil
}

// bearerToken returns the credentials of an Authorization header of the
// Bearer scheme. The scheme name is matched case-insensitively and may be
// followed by several spaces, as RFC 7235 section 2.1 allows, so
// "bearer rk_…" and "BEARER rk_…" are keys too.
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	return token, token != ""
}

const ctxPrincipal = "principal"

// Routes returns every route registered on the server, admin routes
// included, for tests that check each one has a role.
func (s *Server) Routes() []*echo.Route { return s.echo.Routes() }
