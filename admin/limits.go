package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/limits"
)

// maxLimitsBody bounds the bodies of the limits API: a policy with every
// rate and segment is a few kilobytes.
const maxLimitsBody = 1 << 20

// RegisterLimits adds the limits API to g:
//
//	GET    /limits/policy               the live policy (analysts, auditors)
//	PUT    /limits/policy               replace it (analysts)
//	GET    /limits/{entity_type}/{id}   limits, trust, override, history (analysts, auditors)
//	PUT    /limits/{entity_type}/{id}   set an override (analysts)
//	DELETE /limits/{entity_type}/{id}   lift the override (analysts)
//
// Changes are recorded in the audit trail by the limiter itself (see
// LimitsAudit). docs/limits.md describes the JSON.
func RegisterLimits(g *echo.Group, require Require, lim *limits.Limiter) {
	h := &limitsAPI{lim: lim}
	read := require(engine.RoleAnalyst, engine.RoleAuditor)
	write := require(engine.RoleAnalyst)
	g.GET("/limits/policy", h.getPolicy, read)
	g.PUT("/limits/policy", h.putPolicy, write)
	g.GET("/limits/:entity_type/:id", h.getEntity, read)
	g.PUT("/limits/:entity_type/:id", h.putOverride, write)
	g.DELETE("/limits/:entity_type/:id", h.deleteOverride, write)
}

// LimitsAudit returns the hook a limits.Limiter records its changes with
// (policy, overrides, feedback effects), writing to the audit trail a.
func LimitsAudit(a *Audit) limits.AuditFunc {
	return func(ctx context.Context, action, target string, before, after any) error {
		_, err := a.Record(ctx, Entry{Action: action, Target: target, Before: before, After: after})
		return err
	}
}

type limitsAPI struct {
	lim *limits.Limiter
}

// getPolicy is GET /admin/limits/policy.
func (h *limitsAPI) getPolicy(c echo.Context) error {
	return c.JSON(http.StatusOK, h.lim.Policy())
}

// putPolicy is PUT /admin/limits/policy: the body is a whole policy;
// version, author and updated_at are assigned.
func (h *limitsAPI) putPolicy(c echo.Context) error {
	var p limits.Policy
	if err := bindLimits(c, &p); err != nil {
		return err
	}
	stored, err := h.lim.SetPolicy(c.Request().Context(), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, stored)
}

// entityJSON is GET /admin/limits/{entity_type}/{id}.
type entityJSON struct {
	Entity     string              `json:"entity"`
	EntityType string              `json:"entity_type"`
	ID         string              `json:"id"`
	Currency   string              `json:"currency"`
	Limits     entityLimitsJSON    `json:"limits"`
	Trust      float64             `json:"trust"`
	Override   *limits.Override    `json:"override"`
	History    []limits.TrustEvent `json:"history"`
	// BasisDecisionID is the decision whose payment chose the segment;
	// empty when the entity has no decision yet.
	BasisDecisionID string `json:"basis_decision_id,omitempty"`
}

type entityLimitsJSON struct {
	SingleMax      int64    `json:"single_max"`
	DailyMax       int64    `json:"daily_max"`
	DailyRemaining int64    `json:"daily_remaining"`
	DailySpent     int64    `json:"daily_spent"`
	Trust          float64  `json:"trust"`
	Policy         string   `json:"policy"`
	Segment        string   `json:"segment"`
	BaseSingleMax  int64    `json:"base_single_max"`
	BaseDailyMax   int64    `json:"base_daily_max"`
	BaseCurrency   string   `json:"base_currency"`
	Rate           float64  `json:"rate"`
	Adjustments    []string `json:"adjustments"`
}

// getEntity is GET /admin/limits/{entity_type}/{id}?currency=EUR.
func (h *limitsAPI) getEntity(c echo.Context) error {
	typ, id, err := entityParams(c)
	if err != nil {
		return err
	}
	d, err := h.lim.Describe(c.Request().Context(), typ, id, c.QueryParam("currency"))
	if err != nil {
		return err
	}
	l := d.Limits
	out := entityJSON{
		Entity: d.Entity, EntityType: typ, ID: id, Currency: l.Currency, Trust: d.Trust,
		Override: d.Override, History: d.History, BasisDecisionID: d.Basis,
		Limits: entityLimitsJSON{
			SingleMax: l.SingleMax, DailyMax: l.DailyMax, DailyRemaining: l.DailyRemaining, DailySpent: l.DailySpent,
			Trust: l.Trust, Policy: l.Policy, Segment: l.Segment, BaseSingleMax: l.BaseSingleMax,
			BaseDailyMax: l.BaseDailyMax, BaseCurrency: l.BaseCurrency, Rate: l.Rate, Adjustments: l.Adjustments,
		},
	}
	if out.History == nil {
		out.History = []limits.TrustEvent{}
	}
	if out.Limits.Adjustments == nil {
		out.Limits.Adjustments = []string{}
	}
	return c.JSON(http.StatusOK, out)
}

// overrideJSON is the body of PUT /admin/limits/{entity_type}/{id}.
type overrideJSON struct {
	SingleMax int64     `json:"single_max"`
	DailyMax  int64     `json:"daily_max"`
	Currency  string    `json:"currency"`
	Reason    string    `json:"reason"`
	ExpiresAt time.Time `json:"expires_at"`
}

// putOverride is PUT /admin/limits/{entity_type}/{id}.
func (h *limitsAPI) putOverride(c echo.Context) error {
	typ, id, err := entityParams(c)
	if err != nil {
		return err
	}
	var body overrideJSON
	if err := bindLimits(c, &body); err != nil {
		return err
	}
	ov, err := h.lim.SetOverride(c.Request().Context(), typ, id, limits.Override{
		SingleMax: body.SingleMax, DailyMax: body.DailyMax, Currency: body.Currency, Reason: body.Reason, ExpiresAt: body.ExpiresAt,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ov)
}

// deleteOverride is DELETE /admin/limits/{entity_type}/{id}.
func (h *limitsAPI) deleteOverride(c echo.Context) error {
	typ, id, err := entityParams(c)
	if err != nil {
		return err
	}
	if err := h.lim.DeleteOverride(c.Request().Context(), typ, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func entityParams(c echo.Context) (typ, id string, err error) {
	if typ, err = pathParam(c, "entity_type"); err != nil {
		return "", "", err
	}
	if id, err = pathParam(c, "id"); err != nil {
		return "", "", err
	}
	return typ, id, nil
}

// bindLimits decodes a JSON body of at most maxLimitsBody bytes into v,
// refusing unknown fields.
func bindLimits(c echo.Context, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxLimitsBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return engine.Invalid("", "body_too_large", fmt.Sprintf("the body is larger than %d bytes", maxLimitsBody))
	}
	if err != nil {
		return engine.Invalid("", "unreadable_body", "the body could not be read")
	}
	return decodeJSON(body, v)
}
