package notify

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
)

// maxBody bounds request bodies of these routes.
const maxBody = 64 << 10

// Register adds the webhook routes to g, the server's /admin group. Every
// route is for analysts (and admins): a webhook's URL may carry a token,
// so auditors do not read them. Every change is audited in audit.
//
//	POST /webhooks, GET /webhooks, GET|DELETE /webhooks/{id}
//	POST /webhooks/{id}/test
//	GET  /webhooks/{id}/deliveries
//	POST /webhooks/{id}/deliveries/{event_id}/retry
func Register(g *echo.Group, require admin.Require, n *Notifier, audit *admin.Audit) {
	h := handlers{n: n, audit: audit}
	rw := require(engine.RoleAnalyst)
	g.POST("/webhooks", h.create, rw)
	g.GET("/webhooks", h.list, rw)
	g.GET("/webhooks/:id", h.get, rw)
	g.DELETE("/webhooks/:id", h.remove, rw)
	g.POST("/webhooks/:id/test", h.test, rw)
	g.GET("/webhooks/:id/deliveries", h.deliveries, rw)
	g.POST("/webhooks/:id/deliveries/:event_id/retry", h.retry, rw)
}

type handlers struct {
	n     *Notifier
	audit *admin.Audit
}

// hookJSON is a webhook as the API shows it: never with its secret.
type hookJSON struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	Events      []string  `json:"events"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `json:"created_by"`
}

func toHookJSON(h Hook) hookJSON {
	return hookJSON{ID: h.ID, URL: h.URL, Events: h.Events, Description: h.Description, CreatedAt: h.CreatedAt, CreatedBy: h.CreatedBy}
}

func (h handlers) create(c echo.Context) error {
	var in struct {
		URL         string   `json:"url"`
		Events      []string `json:"events"`
		Description string   `json:"description"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	ctx := c.Request().Context()
	hook, err := h.n.Create(ctx, HookSpec(in))
	if err != nil {
		return err
	}
	out := toHookJSON(hook)
	if err := h.record(c, "webhook.create", hook.ID, nil, out); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, struct {
		hookJSON
		Secret string `json:"secret"`
	}{out, hook.Secret})
}

func (h handlers) list(c echo.Context) error {
	hooks := h.n.Hooks()
	out := make([]hookJSON, len(hooks))
	for i, x := range hooks {
		out[i] = toHookJSON(x)
	}
	return c.JSON(http.StatusOK, struct {
		Webhooks   []hookJSON `json:"webhooks"`
		EventTypes []string   `json:"event_types"`
	}{out, EventTypes})
}

func (h handlers) get(c echo.Context) error {
	hook, err := h.n.Hook(c.Param("id"))
	if err != nil {
		return err
	}
	pending, err := h.n.Pending(c.Request().Context(), hook.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, struct {
		hookJSON
		// Pending counts deliveries waiting in the outbox, up to 100000.
		Pending int `json:"pending"`
	}{toHookJSON(hook), pending})
}

func (h handlers) remove(c echo.Context) error {
	hook, err := h.n.Delete(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	if err := h.record(c, "webhook.delete", hook.ID, toHookJSON(hook), nil); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h handlers) test(c echo.Context) error {
	a, err := h.n.Test(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	if err := h.record(c, "webhook.test", c.Param("id"), nil, a); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a)
}

func (h handlers) deliveries(c echo.Context) error {
	limit := 50
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return engine.Invalid("limit", "invalid_limit", "limit must be an integer between 1 and 500")
		}
		limit = n
	}
	out, next, err := h.n.Deliveries(c.Request().Context(), c.Param("id"), limit, c.QueryParam("cursor"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, struct {
		Deliveries []Attempt `json:"deliveries"`
		NextCursor string    `json:"next_cursor,omitempty"`
	}{out, next})
}

func (h handlers) retry(c echo.Context) error {
	id, evt := c.Param("id"), c.Param("event_id")
	if err := h.n.Retry(c.Request().Context(), id, evt); err != nil {
		return err
	}
	if err := h.record(c, "webhook.retry", id, nil, map[string]string{"event_id": evt}); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]string{"webhook_id": id, "event_id": evt, "status": "queued"})
}

func (h handlers) record(c echo.Context, action, id string, before, after any) error {
	return record(c, h.audit, action, "webhook:"+id, before, after)
}

// record appends an audit entry for a change already made.
func record(c echo.Context, audit *admin.Audit, action, target string, before, after any) error {
	if _, err := audit.Record(c.Request().Context(), admin.Entry{Action: action, Target: target, Before: before, After: after}); err != nil {
		return fmt.Errorf("%s done, but not recorded in the audit trail: %w", action, err)
	}
	return nil
}

// bind decodes the JSON body into v (admin.Bind), at most maxBody bytes.
func bind(c echo.Context, v any) error { return admin.Bind(c, v, maxBody, false) }
