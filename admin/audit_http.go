package admin

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

// queryAudit is GET /admin/audit?actor=&action=&target=&from=&to=&limit=&cursor=:
// entries newest first; next_cursor continues.
func (a *API) queryAudit(c echo.Context) error {
	q := AuditQuery{
		Actor: c.QueryParam("actor"), Action: c.QueryParam("action"), Target: c.QueryParam("target"),
		Cursor: c.QueryParam("cursor"),
	}
	var err error
	if q.From, err = queryTime(c, "from"); err != nil {
		return err
	}
	if q.To, err = queryTime(c, "to"); err != nil {
		return err
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return engine.Invalid("from", "invalid_range", "from must be before to")
	}
	limit, err := queryInt(c, "limit", DefaultAuditPage, 1, MaxAuditPage)
	if err != nil {
		return err
	}
	q.Limit = int(limit)
	entries, next, err := a.audit.Query(c.Request().Context(), q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, struct {
		Entries    []Entry `json:"entries"`
		NextCursor string  `json:"next_cursor,omitempty"`
	}{entries, next})
}
