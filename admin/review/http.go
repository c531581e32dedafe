package review

import (
	"fmt"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
)

// maxBody bounds request bodies of these routes.
const maxBody = 256 << 10

// Register adds the review and case routes to g, the server's /admin
// group. Analysts work the queue and the cases; auditors read; admins pass
// everywhere (require decides); gateways get nothing.
//
//	GET  /reviews, /reviews/policy, /reviews/{id}     read
//	PUT  /reviews/policy                              the review policy
//	POST /reviews/{id}/claim, /reviews/{id}/close     work the queue
//	GET  /cases, /cases/export, /cases/{id}           read, search, export
//	POST /cases, PATCH /cases/{id}                    create, change, close
//	POST /cases/{id}/notes, /cases/{id}/decisions     append
func Register(g *echo.Group, require admin.Require, q *Queue, cs *Cases) {
	h := handlers{q: q, cs: cs}
	read := require(engine.RoleAnalyst, engine.RoleAuditor)
	write := require(engine.RoleAnalyst)
	g.GET("/reviews", h.listItems, read)
	g.GET("/reviews/policy", h.getPolicy, read)
	g.PUT("/reviews/policy", h.putPolicy, write)
	g.GET("/reviews/:id", h.getItem, read)
	g.POST("/reviews/:id/claim", h.claim, write)
	g.POST("/reviews/:id/close", h.closeItem, write)

	g.GET("/cases", h.listCases, read)
	g.GET("/cases/export", h.exportCases, read)
	g.POST("/cases", h.createCase, write)
	g.GET("/cases/:id", h.getCase, read)
	g.PATCH("/cases/:id", h.patchCase, write)
	g.POST("/cases/:id/notes", h.addNote, write)
	g.POST("/cases/:id/decisions", h.addDecisions, write)
}

type handlers struct {
	q  *Queue
	cs *Cases
}

// bind decodes the JSON body into v (admin.Bind), at most maxBody bytes;
// an empty body is an error unless optional.
func bind(c echo.Context, v any, optional bool) error { return admin.Bind(c, v, maxBody, optional) }

// queryInt parses an optional integer query parameter within [lo, hi]; def
// when absent.
func queryInt(c echo.Context, name string, def, lo, hi int) (int, error) {
	v := c.QueryParam(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, engine.Invalid(name, "invalid_"+name, fmt.Sprintf("%s must be an integer between %d and %d", name, lo, hi))
	}
	return n, nil
}
