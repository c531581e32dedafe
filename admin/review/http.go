package review

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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

// bind decodes the JSON body into v, refusing unknown fields and more than
// maxBody bytes. An empty body is an error unless optional.
func bind(c echo.Context, v any, optional bool) error {
	r := http.MaxBytesReader(c.Response(), c.Request().Body, maxBody)
	body, err := io.ReadAll(r)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return engine.Invalid("", "body_too_large", fmt.Sprintf("the body is larger than %d bytes", maxBody))
	}
	if err != nil {
		return engine.Invalid("", "unreadable_body", "the body could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return engine.Invalid("", "invalid_json", "the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return engine.InvalidJSON(err)
	}
	if dec.More() {
		return engine.Invalid("", "invalid_json", "the body must hold exactly one JSON value")
	}
	return nil
}

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
