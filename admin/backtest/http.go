package backtest

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
)

// MaxRequestBytes bounds a POST /admin/backtests body, inline rule set
// included.
const MaxRequestBytes = 4 << 20

// Register adds the backtest routes to g, the server's /admin group, for
// analysts (and admins):
//
//	POST   /backtests       start one; 202 with its status
//	GET    /backtests       every backtest kept, newest first, without results
//	GET    /backtests/{id}  status, progress and, once done, the result
//	DELETE /backtests/{id}  cancel it; 200 with its status
//
// Errors are returned to the server's error handler, which maps them.
func Register(g *echo.Group, require admin.Require, b *Backtests) {
	h := handlers{b: b}
	analyst := require(engine.RoleAnalyst)
	g.POST("/backtests", h.create, analyst)
	g.GET("/backtests", h.list, analyst)
	g.GET("/backtests/:id", h.get, analyst)
	g.DELETE("/backtests/:id", h.cancel, analyst)
}

type handlers struct{ b *Backtests }

func (h handlers) create(c echo.Context) error {
	r := http.MaxBytesReader(c.Response(), c.Request().Body, MaxRequestBytes)
	body, err := io.ReadAll(r)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return engine.Invalid("", "body_too_large", "the body is larger than "+strconv.Itoa(MaxRequestBytes)+" bytes")
	}
	if err != nil {
		return engine.Invalid("", "unreadable_body", "the body could not be read")
	}
	req, err := decodeRequest(body)
	if err != nil {
		return err
	}
	st, err := h.b.Start(c.Request().Context(), req)
	if errors.Is(err, ErrBusy) {
		return echo.NewHTTPError(http.StatusTooManyRequests, "too many backtests are queued or running; wait for one to finish or cancel one")
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, strings.TrimSuffix(c.Request().URL.Path, "/")+"/"+st.ID)
	return c.JSON(http.StatusAccepted, st)
}

func (h handlers) list(c echo.Context) error {
	list, err := h.b.List()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"backtests": list})
}

func (h handlers) get(c echo.Context) error {
	st, err := h.b.Get(c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}

func (h handlers) cancel(c echo.Context) error {
	st, err := h.b.Cancel(c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}
