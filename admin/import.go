package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/rules"
)

// export is GET /admin/ruleset/export: the live version as a YAML rule
// file, or ?version=n, or ?draft=true. The lists the rules name are listed
// with their kind (not their items), so the file can seed a new deployment.
func (a *API) export(c echo.Context) error {
	ref, name := "live", "live"
	if v := c.QueryParam("version"); v != "" {
		ref, name = v, "v"+v
	}
	if d := c.QueryParam("draft"); d != "" {
		draft, err := strconv.ParseBool(d)
		if err != nil {
			return engine.Invalid("draft", "invalid_draft", "draft must be true or false")
		}
		if draft {
			if c.QueryParam("version") != "" {
				return engine.Invalid("draft", "invalid_draft", "ask for a version or the draft, not both")
			}
			ref, name = "draft", "draft"
		}
	}
	if ref == "live" {
		if n := a.liveVersion(); n > 0 {
			name = "v" + strconv.FormatInt(n, 10)
		}
	}
	spec, err := a.specAt(c.Request().Context(), ref, "version")
	if err != nil {
		return err
	}
	f := rules.File{Spec: spec}
	for _, l := range listsUsed(spec) {
		if m, err := a.cfg.Lists.Get(l); err == nil {
			f.Lists = append(f.Lists, rules.ListSeed{Name: m.Name, Kind: m.Kind})
		}
	}
	data, err := rules.MarshalFile(f)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="rules-%s.yaml"`, name))
	return c.Blob(http.StatusOK, "application/yaml", data)
}

// importJSON is the answer of POST /admin/ruleset/import.
type importJSON struct {
	Rules int `json:"rules"`
	diffSummary
}

// importFile is POST /admin/ruleset/import: a YAML rule file (as export
// writes it) replaces the whole draft, or, when any rule does not compile,
// nothing changes (422). Rule versions in the file are ignored: a new or
// changed rule gets the next version, an unchanged one keeps its own. The
// file's lists section is ignored; manage lists with the lists API.
func (a *API) importFile(c echo.Context) error {
	body, err := a.readBody(c)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := CheckFile(body, a.env())
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	old, m, err := a.drafts.spec(ctx)
	if err != nil {
		return err
	}
	current := make(map[string]rules.Rule, len(old.Rules))
	for _, r := range old.Rules {
		current[r.ID] = r
	}
	spec := f.Spec
	spec.Rules = make([]rules.Rule, len(f.Rules))
	for i, r := range f.Rules {
		if r.Mode == "" {
			r.Mode = engine.ModeActive
		}
		prev, ok := current[r.ID]
		if ok && len(changedFields(prev, r)) == 0 {
			r.Version = prev.Version
		} else {
			r.Version = m.nextVersion(r.ID, prev.Version)
		}
		spec.Rules[i] = r
	}
	a.touch(c, &m)
	if err := a.drafts.replace(ctx, m, spec, m.UpdatedBy, m.UpdatedAt); err != nil {
		if errors.Is(err, kv.ErrTooBig) {
			return engine.Invalid("", "too_large", "the rule set is too large to store at once")
		}
		return err
	}
	d := diffSpecs(old, spec).summary()
	if err := a.record(ctx, "ruleset.import", "ruleset:draft", nil, d); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, importJSON{Rules: len(spec.Rules), diffSummary: d})
}
