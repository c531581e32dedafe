// Package server is the HTTP edge of the risk engine: it turns requests into
// engine values, calls the engine, and turns decisions and errors into JSON.
// Echo lives here and in admin only.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

// Defaults for Config.
const (
	DefaultMaxBodyBytes   = 64 << 10
	DefaultRequestTimeout = 2 * time.Second
	DefaultMaxHeaderBytes = 16 << 10
)

// Decider decides payments (engine.Engine).
type Decider interface {
	Decide(ctx context.Context, p engine.Payment, raw []byte) (*engine.Record, bool, error)
}

// DecisionReader reads stored decisions.
type DecisionReader interface {
	Get(ctx context.Context, decisionID string) (*engine.Record, error)
	Search(ctx context.Context, q engine.Query) ([]*engine.Record, string, error)
}

// Config configures a Server.
type Config struct {
	Engine    Decider
	Decisions DecisionReader
	// Feedback takes feedback labels; nil leaves the feedback routes out.
	Feedback Feedbacker
	// Auth resolves API keys; nil is dev mode, where every request acts as
	// an admin named "dev".
	Auth Authenticator
	// Ready reports whether the service can take traffic (/readyz).
	Ready func() error
	Log   *slog.Logger
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64
	// RequestTimeout bounds every request.
	RequestTimeout time.Duration
	// Metrics records HTTP and decision metrics and serves GET /metrics to
	// keys with the metrics (or admin) role; nil means no metrics.
	Metrics *Metrics
	// RateLimit bounds the requests of each API key; zero is unlimited.
	RateLimit RateLimit
}

// Server is the HTTP service. Create it with New, add admin routes with
// Group, then Serve.
type Server struct {
	cfg     Config
	log     *slog.Logger
	echo    *echo.Echo
	http    *http.Server
	limiter *limiter // nil: unlimited
}

// New builds the Echo instance and registers the public routes.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Ready == nil {
		cfg.Ready = func() error { return nil }
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	s := &Server{cfg: cfg, log: cfg.Log, echo: e, limiter: newLimiter(cfg.RateLimit, nil)}
	e.HTTPErrorHandler = s.errorHandler
	if cfg.Metrics != nil {
		e.Use(cfg.Metrics.middleware) // outermost: it sees the final status
		e.GET("/metrics", echo.WrapHandler(cfg.Metrics.Handler()), s.Require(engine.RoleMetrics))
	}
	e.Use(s.middleware)
	s.registerPprof()

	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", s.readyz)
	e.GET("/openapi.json", serveOpenAPI)
	v1 := e.Group("/v1")
	v1.POST("/decisions", s.postDecision, s.Require(engine.RoleGateway))
	readers := s.Require(engine.RoleAnalyst, engine.RoleAuditor)
	v1.GET("/decisions", s.searchDecisions, readers)
	v1.GET("/decisions/:id", s.getDecision, readers)
	s.registerFeedback(v1)
	return s
}

// Handler returns the HTTP handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.echo }

// Group returns a route group under prefix with the server's middleware and
// error handling, for the admin API.
func (s *Server) Group(prefix string, m ...echo.MiddlewareFunc) *echo.Group {
	return s.echo.Group(prefix, m...)
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.http = &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      s.cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
	}
	if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.http == nil {
		return nil
	}
	return s.http.Shutdown(ctx)
}

func (s *Server) readyz(c echo.Context) error {
	if err := s.cfg.Ready(); err != nil {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

const (
	ctxRequestID = "request_id"
	ctxErrorCode = "error_code"
)

func requestID(c echo.Context) string {
	id, _ := c.Get(ctxRequestID).(string)
	return id
}

// middleware gives every request an id, a deadline and a recover, and
// writes one access record when it ends.
func (s *Server) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		start := time.Now()
		req := c.Request()
		id := req.Header.Get(echo.HeaderXRequestID)
		if id == "" || len(id) > 64 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Set(ctxRequestID, id)
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		ctx, cancel := context.WithTimeout(req.Context(), s.cfg.RequestTimeout)
		defer cancel()
		c.SetRequest(req.WithContext(ctx))
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("request panicked", "request_id", id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				err = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
			}
			if err != nil {
				c.Error(err)
				err = nil
			}
			if !s.log.Enabled(c.Request().Context(), slog.LevelInfo) {
				return
			}
			attrs := []any{
				"request_id", id, "method", req.Method, "route", c.Path(), "status", c.Response().Status,
				"duration_us", time.Since(start).Microseconds(), "bytes_in", req.ContentLength,
			}
			if code, ok := c.Get(ctxErrorCode).(string); ok {
				attrs = append(attrs, "error_code", code)
			}
			if p, ok := c.Get(ctxPrincipal).(engine.Principal); ok {
				attrs = append(attrs, "key", p.Name)
			}
			s.log.Info("access", attrs...)
		}()
		return next(c)
	}
}
