package server

import (
	"context"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

// MaxProfileDuration bounds the seconds parameter of /debug/pprof/profile
// and /debug/pprof/trace.
const MaxProfileDuration = 60 * time.Second

// registerPprof serves net/http/pprof under /debug/pprof to admin keys only:
// profiles reveal memory contents and cost CPU.
func (s *Server) registerPprof() {
	admin := s.Require(engine.RoleAdmin)
	s.echo.GET("/debug/pprof", s.pprof, admin)
	s.echo.GET("/debug/pprof/*", s.pprof, admin)
	s.echo.POST("/debug/pprof/symbol", s.pprof, admin)
}

// pprof dispatches to net/http/pprof. CPU profiles and traces run for
// ?seconds=N, longer than the request timeout sized for the payment path,
// so this route has its own deadline of MaxProfileDuration plus a margin.
func (s *Server) pprof(c echo.Context) error {
	req := c.Request()
	if v := req.URL.Query().Get("seconds"); v != "" {
		sec, err := strconv.Atoi(v)
		if err != nil || sec < 1 || time.Duration(sec)*time.Second > MaxProfileDuration {
			return engine.Invalid("seconds", "invalid_seconds", "seconds must be between 1 and "+strconv.Itoa(int(MaxProfileDuration/time.Second)))
		}
	}
	deadline := MaxProfileDuration + 10*time.Second
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), deadline)
	defer cancel()
	// net/http/pprof refuses a profile longer than the server's
	// WriteTimeout, read from the context; this route extends its own write
	// deadline instead, so it shows pprof a server without one.
	ctx = context.WithValue(ctx, http.ServerContextKey, &http.Server{})
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(deadline))
	req = req.WithContext(ctx)
	w := c.Response()
	switch strings.TrimPrefix(req.URL.Path, "/debug/pprof/") {
	case "cmdline":
		pprof.Cmdline(w, req)
	case "profile":
		pprof.Profile(w, req)
	case "symbol":
		pprof.Symbol(w, req)
	case "trace":
		pprof.Trace(w, req)
	default:
		pprof.Index(w, req) // the index, or the named profile
	}
	return nil
}
