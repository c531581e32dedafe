package admin

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/rules"
)

// ruleJSON is a draft rule on the wire. updated_at and updated_by are
// ignored on input, so a rule read can be sent back edited.
type ruleJSON struct {
	rules.Rule
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

func toRuleJSON(r draftRule) ruleJSON {
	return ruleJSON{Rule: r.Rule, UpdatedAt: r.UpdatedAt, UpdatedBy: r.UpdatedBy}
}

// draftJSON is GET /admin/ruleset/draft.
type draftJSON struct {
	ChallengeThreshold int        `json:"challenge_threshold"`
	DenyThreshold      int        `json:"deny_threshold"`
	BaseVersion        int64      `json:"base_version"`
	LiveVersion        int64      `json:"live_version"`
	Changed            bool       `json:"changed"`
	UpdatedAt          time.Time  `json:"updated_at,omitzero"`
	UpdatedBy          string     `json:"updated_by,omitempty"`
	Rules              []ruleJSON `json:"rules"`
}

// thresholdsJSON is the body of PUT /admin/ruleset/draft; an absent field
// is left as it is.
type thresholdsJSON struct {
	ChallengeThreshold *int `json:"challenge_threshold"`
	DenyThreshold      *int `json:"deny_threshold"`
}

// checkRule compiles one rule on its own against the current environment.
// Errors are a *rules.CompileError (422).
func (a *API) checkRule(r rules.Rule) error {
	_, err := rules.Compile(rules.Spec{Rules: []rules.Rule{r}}, a.env(), 0)
	return err
}

// touch marks the draft changed by the caller of c.
func (a *API) touch(c echo.Context, m *draftMeta) {
	m.Changed = true
	m.UpdatedAt = a.cfg.Now().UTC()
	m.UpdatedBy = engine.Actor(c.Request().Context())
}

func (a *API) listRules(c echo.Context) error {
	ctx := c.Request().Context()
	rs, err := a.drafts.rules(ctx)
	if err != nil {
		return err
	}
	out := make([]ruleJSON, len(rs))
	for i, r := range rs {
		out[i] = toRuleJSON(r)
	}
	return c.JSON(http.StatusOK, map[string]any{"rules": out})
}

func (a *API) getRule(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	r, err := a.drafts.rule(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toRuleJSON(r))
}

// createRule is POST /admin/rules: a new rule in the draft, at version 1
// (or one past the live rule of the same id).
func (a *API) createRule(c echo.Context) error {
	var in ruleJSON
	if err := a.bind(c, &in, false); err != nil {
		return err
	}
	r := in.Rule
	if r.Mode == "" {
		r.Mode = engine.ModeActive
	}
	ctx := c.Request().Context()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.checkRule(r); err != nil {
		return err
	}
	if _, err := a.drafts.rule(ctx, r.ID); err == nil {
		return fmt.Errorf("rule %q is already in the draft: %w", r.ID, engine.ErrConflict)
	} else if !errors.Is(err, engine.ErrNotFound) {
		return err
	}
	live, _, err := a.liveSpec()
	if err != nil {
		return err
	}
	m, _, err := a.drafts.meta(ctx)
	if err != nil {
		return err
	}
	floor := 0
	for _, lr := range live.Rules {
		if lr.ID == r.ID {
			floor = lr.Version
		}
	}
	r.Version = m.nextVersion(r.ID, floor)
	a.touch(c, &m)
	dr := draftRule{Rule: r, Pos: m.NextPos, UpdatedAt: m.UpdatedAt, UpdatedBy: m.UpdatedBy}
	m.NextPos++
	if err := a.drafts.put(ctx, m, &dr); err != nil {
		return err
	}
	if err := a.record(ctx, "rule.create", "rule:"+r.ID, nil, r); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toRuleJSON(dr))
}

// updateRule is PUT /admin/rules/{id}: replaces a draft rule and increments
// its version. A non-zero version in the body must be the current one, so
// two analysts editing one rule do not overwrite each other (409).
func (a *API) updateRule(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	var in ruleJSON
	if err := a.bind(c, &in, false); err != nil {
		return err
	}
	r := in.Rule
	if r.ID == "" {
		r.ID = id
	}
	if r.ID != id {
		return engine.Invalid("id", "id_mismatch", fmt.Sprintf("the body's id %q is not the path's %q", r.ID, id))
	}
	if r.Mode == "" {
		r.Mode = engine.ModeActive
	}
	ctx := c.Request().Context()
	a.mu.Lock()
	defer a.mu.Unlock()
	old, err := a.drafts.rule(ctx, id)
	if err != nil {
		return err
	}
	if r.Version != 0 && r.Version != old.Version {
		return fmt.Errorf("rule %q is at version %d, not %d; read it again and reapply the change: %w", id, old.Version, r.Version, engine.ErrConflict)
	}
	if err := a.checkRule(r); err != nil {
		return err
	}
	m, _, err := a.drafts.meta(ctx)
	if err != nil {
		return err
	}
	r.Version = m.nextVersion(id, old.Version)
	a.touch(c, &m)
	dr := draftRule{Rule: r, Pos: old.Pos, UpdatedAt: m.UpdatedAt, UpdatedBy: m.UpdatedBy}
	if err := a.drafts.put(ctx, m, &dr); err != nil {
		return err
	}
	if err := a.record(ctx, "rule.update", "rule:"+id, old.Rule, r); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toRuleJSON(dr))
}

func (a *API) deleteRule(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	a.mu.Lock()
	defer a.mu.Unlock()
	old, err := a.drafts.rule(ctx, id)
	if err != nil {
		return err
	}
	m, _, err := a.drafts.meta(ctx)
	if err != nil {
		return err
	}
	a.touch(c, &m)
	if err := a.drafts.remove(ctx, m, id); err != nil {
		return err
	}
	if err := a.record(ctx, "rule.delete", "rule:"+id, old.Rule, nil); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// validate is POST /admin/rules/validate. A body holding only an
// expression checks the expression; any other field makes it a whole rule.
// Answers 200 {"valid":true} or 422 with every error.
func (a *API) validate(c echo.Context) error {
	var in ruleJSON
	if err := a.bind(c, &in, false); err != nil {
		return err
	}
	r := in.Rule
	var err error
	if (r == rules.Rule{Expression: r.Expression}) {
		err = rules.CheckExpression(r.Expression, a.env())
	} else {
		err = a.checkRule(r)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"valid": true})
}

func (a *API) getDraft(c echo.Context) error {
	ctx := c.Request().Context()
	m, _, err := a.drafts.meta(ctx)
	if err != nil {
		return err
	}
	rs, err := a.drafts.rules(ctx)
	if err != nil {
		return err
	}
	out := draftJSON{
		ChallengeThreshold: m.ChallengeThreshold, DenyThreshold: m.DenyThreshold, BaseVersion: m.BaseVersion,
		Changed: m.Changed, UpdatedAt: m.UpdatedAt, UpdatedBy: m.UpdatedBy, Rules: make([]ruleJSON, len(rs)),
	}
	if live := a.cfg.Engine.Rules(); live != nil {
		out.LiveVersion = live.Version()
	}
	for i, r := range rs {
		out.Rules[i] = toRuleJSON(r)
	}
	return c.JSON(http.StatusOK, out)
}

// updateDraft is PUT /admin/ruleset/draft: the draft's thresholds.
func (a *API) updateDraft(c echo.Context) error {
	var in thresholdsJSON
	if err := a.bind(c, &in, false); err != nil {
		return err
	}
	ctx := c.Request().Context()
	a.mu.Lock()
	defer a.mu.Unlock()
	m, _, err := a.drafts.meta(ctx)
	if err != nil {
		return err
	}
	before := thresholds{m.ChallengeThreshold, m.DenyThreshold}
	if in.ChallengeThreshold != nil {
		m.ChallengeThreshold = *in.ChallengeThreshold
	}
	if in.DenyThreshold != nil {
		m.DenyThreshold = *in.DenyThreshold
	}
	if _, err := rules.Compile(rules.Spec{ChallengeThreshold: m.ChallengeThreshold, DenyThreshold: m.DenyThreshold}, a.env(), 0); err != nil {
		return err
	}
	a.touch(c, &m)
	if err := a.drafts.put(ctx, m, nil); err != nil {
		return err
	}
	after := thresholds{m.ChallengeThreshold, m.DenyThreshold}
	if err := a.record(ctx, "ruleset.draft.update", "ruleset:draft", before, after); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, after)
}

// thresholds is the thresholds part of a spec, on the wire.
type thresholds struct {
	ChallengeThreshold int `json:"challenge_threshold"`
	DenyThreshold      int `json:"deny_threshold"`
}
