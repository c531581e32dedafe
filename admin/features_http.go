package admin

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
)

// featureJSON is a feature definition on the wire, with its backfill
// progress (absent when this process never backfilled it) and the live
// rules that read it.
type featureJSON struct {
	features.Definition
	Backfill *features.BackfillStatus `json:"backfill,omitempty"`
	UsedBy   []string                 `json:"used_by,omitempty"`
}

func (a *API) toFeatureJSON(d features.Definition, usedBy []string) featureJSON {
	out := featureJSON{Definition: d, UsedBy: usedBy}
	if st, ok := a.cfg.Features.Status(d.Name); ok {
		out.Backfill = &st
	}
	return out
}

func (a *API) listFeatures(c echo.Context) error {
	live, _, err := a.liveSpec()
	if err != nil {
		return err
	}
	defs := a.cfg.Features.Definitions()
	out := make([]featureJSON, len(defs))
	for i, d := range defs {
		out[i] = a.toFeatureJSON(d, rulesUsingFeature(live, d.Name))
	}
	return c.JSON(http.StatusOK, map[string]any{"features": out})
}

func (a *API) getFeature(c echo.Context) error {
	name := c.Param("name")
	i, defs := findFeature(a.cfg.Features.Definitions(), name)
	if i < 0 {
		return fmt.Errorf("feature %q: %w", name, engine.ErrNotFound)
	}
	live, _, err := a.liveSpec()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a.toFeatureJSON(defs[i], rulesUsingFeature(live, name)))
}

func findFeature(defs []features.Definition, name string) (int, []features.Definition) {
	return slices.IndexFunc(defs, func(d features.Definition) bool { return d.Name == name }), defs
}

// setFeatures makes defs the feature definitions, then compiles the live
// rules again so they can name new features. The caller holds a.mu.
func (a *API) setFeatures(c echo.Context, defs []features.Definition) error {
	if err := a.cfg.Features.SetDefinitions(c.Request().Context(), defs); err != nil {
		return err
	}
	if err := a.recompileLive(); err != nil {
		// The definitions changed; the live set keeps working on its own
		// feature names, so this is logged, not failed.
		a.cfg.Log.Error("recompile live rules after a features change", "err", err)
	}
	return nil
}

// createFeature is POST /admin/features: a new definition, backfilled from
// the decision history in the background (201).
func (a *API) createFeature(c echo.Context) error {
	var d features.Definition
	if err := a.bind(c, &d, false); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	defs := a.cfg.Features.Definitions()
	if i, _ := findFeature(defs, d.Name); i >= 0 {
		return fmt.Errorf("feature %q already exists: %w", d.Name, engine.ErrConflict)
	}
	if err := a.setFeatures(c, append(defs, d)); err != nil {
		return err
	}
	if err := a.record(c.Request().Context(), "feature.create", "feature:"+d.Name, nil, d); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, a.toFeatureJSON(d, nil))
}

// updateFeature is PUT /admin/features/{name}: replaces a definition. A
// changed definition starts again from the history (a new backfill).
func (a *API) updateFeature(c echo.Context) error {
	name := c.Param("name")
	var d features.Definition
	if err := a.bind(c, &d, false); err != nil {
		return err
	}
	if d.Name == "" {
		d.Name = name
	}
	if d.Name != name {
		return engine.Invalid("name", "name_mismatch", fmt.Sprintf("the body's name %q is not the path's %q; to rename, create the new feature and delete the old one", d.Name, name))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	defs := a.cfg.Features.Definitions()
	i, _ := findFeature(defs, name)
	if i < 0 {
		return fmt.Errorf("feature %q: %w", name, engine.ErrNotFound)
	}
	old := defs[i]
	defs[i] = d
	if err := a.setFeatures(c, defs); err != nil {
		return err
	}
	if err := a.record(c.Request().Context(), "feature.update", "feature:"+name, old, d); err != nil {
		return err
	}
	live, _, err := a.liveSpec()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, a.toFeatureJSON(d, rulesUsingFeature(live, name)))
}

// deleteFeature is DELETE /admin/features/{name}. A feature a live rule
// reads is not deleted (409 naming the rules).
func (a *API) deleteFeature(c echo.Context) error {
	name := c.Param("name")
	a.mu.Lock()
	defer a.mu.Unlock()
	defs := a.cfg.Features.Definitions()
	i, _ := findFeature(defs, name)
	if i < 0 {
		return fmt.Errorf("feature %q: %w", name, engine.ErrNotFound)
	}
	live, _, err := a.liveSpec()
	if err != nil {
		return err
	}
	if ids := rulesUsingFeature(live, name); len(ids) > 0 {
		return fmt.Errorf("feature %q is used by live %s: %w", name, ruleNames(ids), engine.ErrConflict)
	}
	if err := a.canaryUses(func(s rules.Spec) []string { return rulesUsingFeature(s, name) }, fmt.Sprintf("feature %q", name)); err != nil {
		return err
	}
	old := defs[i]
	if err := a.setFeatures(c, slices.Delete(defs, i, i+1)); err != nil {
		return err
	}
	if err := a.record(c.Request().Context(), "feature.delete", "feature:"+name, old, nil); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
