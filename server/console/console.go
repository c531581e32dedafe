// Package console is the risk engine's web console for analysts, auditors
// and admins: server-rendered html/template pages with htmx, served by the
// engine at /console/ (docs/console.md).
//
// The console has no data access of its own. A signed-in browser holds a
// session cookie; the session keeps the API key on the server, and every
// page reads and changes through the HTTP API in-process, as that key. So
// the console has exactly the API's roles and validation, and its pages
// show what the API answers.
package console

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

//go:embed templates static
var assets embed.FS

// Authenticator resolves an API key to a principal (admin.Keys). It returns
// an error wrapping engine.ErrNotFound for an unknown or revoked key.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (engine.Principal, error)
}

// Config configures a Console. API is required.
type Config struct {
	// API is the engine's HTTP handler (server.Server.Handler): the console
	// calls it in-process with the session's API key.
	API http.Handler
	// Auth checks the key at sign-in; nil is dev mode, where any key signs
	// in as the admin "dev" (the API then ignores keys too).
	Auth Authenticator
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// IdleTimeout and MaxAge bound a session; zero means DefaultIdleTimeout
	// and DefaultMaxAge.
	IdleTimeout, MaxAge time.Duration
	// Log receives sign-ins and sign-outs (never keys); nil discards.
	Log *slog.Logger
	// Sessions, when set, keeps sessions where every node reads them, so
	// a browser may be sent to any node of a cluster; nil keeps them in
	// this process's memory.
	Sessions SessionStore
}

// Console serves the console pages. Create it with New, then Register.
// It is safe for concurrent use.
type Console struct {
	cfg      Config
	sessions *sessions
	throttle *throttle
	pages    map[string]*template.Template
	static   http.Handler
}

// New parses the embedded templates. It does no other I/O.
func New(cfg Config) (*Console, error) {
	if cfg.API == nil {
		return nil, errors.New("console: API handler is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	return &Console{
		cfg: cfg, sessions: newSessions(cfg.Sessions, cfg.Now, cfg.IdleTimeout, cfg.MaxAge), throttle: newThrottle(cfg.Now), pages: pages,
		static: http.StripPrefix("/console/static/", http.FileServer(http.FS(static))),
	}, nil
}

// Register adds GET / (a redirect to /console/) and the console routes to
// root, a group at the server's root with its middleware.
func (c *Console) Register(root *echo.Group) {
	root.GET("/", func(ec echo.Context) error { return ec.Redirect(http.StatusSeeOther, "/console/") }, c.headers)
	root.GET("/console", func(ec echo.Context) error { return ec.Redirect(http.StatusSeeOther, "/console/") }, c.headers)
	root.GET("/console/static/*", c.serveStatic, c.headers)
	root.GET("/console/sign-in", c.signInPage, c.headers)
	root.POST("/console/sign-in", c.signIn, c.headers, c.sameOrigin)
	g := root.Group("/console", c.headers, c.requireSession)
	g.POST("/sign-out", c.signOut)
	c.registerPages(g)
}

// maxFormBytes bounds a console form: a rule with a pasted payment fits
// many times over.
const maxFormBytes = 256 << 10

// csp allows scripts and styles from the console's own origin only: no
// inline script, no eval, nothing from elsewhere.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// headers sets the console's security headers.
func (c *Console) headers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		h := ec.Response().Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(ec.Request().URL.Path, "/console/static/") {
			h.Set("Cache-Control", "no-store")
		}
		if req := ec.Request(); req.Body != nil && req.Method != http.MethodGet {
			req.Body = http.MaxBytesReader(ec.Response(), req.Body, maxFormBytes)
		}
		return next(ec)
	}
}

func (c *Console) serveStatic(ec echo.Context) error {
	ec.Response().Header().Set("Cache-Control", "public, max-age=3600")
	c.static.ServeHTTP(ec.Response(), ec.Request())
	return nil
}

// sameOrigin refuses a state-changing request another site's page sent:
// the Origin header, when the browser sends one, must be this host, and
// Sec-Fetch-Site must not say cross-site.
func (c *Console) sameOrigin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		req := ec.Request()
		if site := req.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			return c.fail(ec, http.StatusForbidden, "This request came from another site.")
		}
		if o := req.Header.Get("Origin"); o != "" {
			u, err := url.Parse(o)
			if err != nil || u.Host != req.Host {
				return c.fail(ec, http.StatusForbidden, "This request came from another site.")
			}
		}
		return next(ec)
	}
}

const ctxSession = "console_session"

// requireSession lets a request through only with a live session. Without
// one a page is sent to sign-in (htmx: HX-Redirect) and anything else is
// 401. A state-changing request must also carry the session's CSRF token
// (form field csrf or header X-CSRF-Token) and come from this origin.
func (c *Console) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		req := ec.Request()
		var sess *session
		if ck, err := req.Cookie(cookieName); err == nil {
			sess, _, err = c.sessions.get(req.Context(), ck.Value)
			if err != nil {
				c.cfg.Log.Error("console session not read", "err", err)
				return c.fail(ec, http.StatusServiceUnavailable, "The console cannot read its sessions just now. Try again in a moment.")
			}
		}
		if sess == nil {
			if req.Method == http.MethodGet {
				target := "/console/sign-in?next=" + url.QueryEscape(req.URL.RequestURI())
				if req.Header.Get("HX-Request") != "" {
					ec.Response().Header().Set("HX-Redirect", target)
					return ec.NoContent(http.StatusUnauthorized)
				}
				return ec.Redirect(http.StatusSeeOther, target)
			}
			return c.fail(ec, http.StatusUnauthorized, "Your session has ended. Sign in again.")
		}
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			token := req.Header.Get("X-CSRF-Token")
			if token == "" {
				token = ec.FormValue("csrf")
			}
			if !sess.checkCSRF(token) {
				return c.fail(ec, http.StatusForbidden, "The form is stale or came from elsewhere (CSRF check). Reload the page and try again.")
			}
			if err := c.sameOrigin(func(echo.Context) error { return nil })(ec); err != nil {
				return err
			}
			if ec.Response().Committed {
				return nil
			}
		}
		ec.Set(ctxSession, sess)
		ec.SetRequest(req.WithContext(engine.WithPrincipal(req.Context(), sess.principal)))
		return next(ec)
	}
}

func sessionOf(ec echo.Context) *session {
	s, _ := ec.Get(ctxSession).(*session)
	return s
}

func (c *Console) signInPage(ec echo.Context) error {
	return c.render(ec, http.StatusOK, "signin", &page{Title: "Sign in", Next: safeNext(ec.QueryParam("next"))})
}

// signIn checks the key and starts a session. The key arrives in the POST
// body only, is never logged and never sent back.
func (c *Console) signIn(ec echo.Context) error {
	key := strings.TrimSpace(ec.FormValue("api_key"))
	next := safeNext(ec.FormValue("next"))
	addr := clientAddr(ec.Request().RemoteAddr)
	if c.throttle.blocked(addr) {
		c.cfg.Log.Warn("console sign-in throttled", "client", addr)
		return c.render(ec, http.StatusTooManyRequests, "signin", &page{Title: "Sign in", Next: next, Flash: "Too many failed sign-ins from this address; try again later."})
	}
	if key == "" || len(key) > 512 {
		return c.render(ec, http.StatusUnauthorized, "signin", &page{Title: "Sign in", Next: next, Flash: "Enter an API key."})
	}
	p := engine.Principal{KeyID: "dev", Name: "dev", Role: engine.RoleAdmin}
	if c.cfg.Auth != nil {
		var err error
		p, err = c.cfg.Auth.Authenticate(ec.Request().Context(), key)
		if errors.Is(err, engine.ErrNotFound) {
			c.throttle.fail(addr)
			c.cfg.Log.Info("console sign-in refused", "reason", "unknown or revoked key", "client", addr)
			return c.render(ec, http.StatusUnauthorized, "signin", &page{Title: "Sign in", Next: next, Flash: "Unknown or revoked API key."})
		}
		if err != nil {
			return err
		}
	}
	if p.Role == engine.RoleGateway || p.Role == engine.RoleMetrics {
		return c.render(ec, http.StatusForbidden, "signin", &page{Title: "Sign in", Next: next, Flash: "This key's role (" + string(p.Role) + ") has no console access."})
	}
	id, _, err := c.sessions.create(ec.Request().Context(), key, p)
	if err != nil {
		c.cfg.Log.Error("console session not stored", "err", err)
		return c.render(ec, http.StatusServiceUnavailable, "signin", &page{Title: "Sign in", Next: next, Flash: "The console cannot store sessions just now. Try again in a moment."})
	}
	ec.SetCookie(&http.Cookie{
		Name: cookieName, Value: id, Path: "/console", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: ec.Request().TLS != nil, MaxAge: int(c.cfg.MaxAge / time.Second),
	})
	c.cfg.Log.Info("console sign-in", "key", p.Name, "role", p.Role)
	return ec.Redirect(http.StatusSeeOther, next)
}

func (c *Console) signOut(ec echo.Context) error {
	if ck, err := ec.Request().Cookie(cookieName); err == nil {
		if err := c.sessions.end(ec.Request().Context(), ck.Value); err != nil {
			c.cfg.Log.Error("console session not ended", "err", err)
			return c.fail(ec, http.StatusServiceUnavailable, "Signing out failed: the session store did not answer. Try again in a moment.")
		}
	}
	ec.SetCookie(&http.Cookie{Name: cookieName, Value: "", Path: "/console", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: ec.Request().TLS != nil, MaxAge: -1})
	return ec.Redirect(http.StatusSeeOther, "/console/sign-in")
}

// safeNext keeps a post-sign-in target on the console: a path under
// /console/, never another host.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/console/"
	}
	return next
}
