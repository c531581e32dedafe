package notify

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
)

// RegisterAlerts adds the alert routes to g, the server's /admin group:
// analysts and auditors read, analysts change; every change is audited.
//
//	GET  /alerts                               firing and recent alerts
//	GET  /alerts/rules, /alerts/rules/{id}     the alert rules
//	POST /alerts/rules                         create
//	PUT  /alerts/rules/{id}                    replace
//	DELETE /alerts/rules/{id}                  delete
func RegisterAlerts(g *echo.Group, require admin.Require, a *Alerts, audit *admin.Audit) {
	h := alertHandlers{a: a, audit: audit}
	read := require(engine.RoleAnalyst, engine.RoleAuditor)
	write := require(engine.RoleAnalyst)
	g.GET("/alerts", h.alerts, read)
	g.GET("/alerts/rules", h.rules, read)
	g.GET("/alerts/rules/:id", h.rule, read)
	g.POST("/alerts/rules", h.create, write)
	g.PUT("/alerts/rules/:id", h.replace, write)
	g.DELETE("/alerts/rules/:id", h.remove, write)
}

type alertHandlers struct {
	a     *Alerts
	audit *admin.Audit
}

func (h alertHandlers) alerts(c echo.Context) error {
	all, err := h.a.Recent(c.Request().Context())
	if err != nil {
		return err
	}
	firing := []Alert{}
	for _, al := range all {
		if al.State == StateFiring {
			firing = append(firing, al)
		}
	}
	return c.JSON(http.StatusOK, struct {
		Firing []Alert `json:"firing"`
		Recent []Alert `json:"recent"`
	}{firing, all})
}

func (h alertHandlers) rules(c echo.Context) error {
	return c.JSON(http.StatusOK, struct {
		Rules []AlertRule `json:"rules"`
	}{h.a.Rules()})
}

func (h alertHandlers) rule(c echo.Context) error {
	r, err := h.a.Rule(c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h alertHandlers) create(c echo.Context) error {
	var r AlertRule
	if err := bind(c, &r); err != nil {
		return err
	}
	if _, err := h.a.PutRule(c.Request().Context(), r, true); err != nil {
		return err
	}
	r, _ = h.a.Rule(r.ID)
	if err := h.record(c, "alert_rule.create", r.ID, nil, r); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, r)
}

func (h alertHandlers) replace(c echo.Context) error {
	var r AlertRule
	if err := bind(c, &r); err != nil {
		return err
	}
	if r.ID == "" {
		r.ID = c.Param("id")
	}
	if r.ID != c.Param("id") {
		return engine.Invalid("id", "id_mismatch", "id in the body must match the path")
	}
	before, err := h.a.PutRule(c.Request().Context(), r, false)
	if err != nil {
		return err
	}
	r, _ = h.a.Rule(r.ID)
	if err := h.record(c, "alert_rule.update", r.ID, before, r); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (h alertHandlers) remove(c echo.Context) error {
	r, err := h.a.DeleteRule(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	if err := h.record(c, "alert_rule.delete", r.ID, r, nil); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h alertHandlers) record(c echo.Context, action, id string, before, after any) error {
	return record(c, h.audit, action, "alert_rule:"+id, before, after)
}
