package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

func (c *Console) registerRules(g *echo.Group) {
	g.GET("/rules", c.rules)
	g.GET("/rules/new", c.newRule)
	g.POST("/rules", c.saveRule)
	g.POST("/rules/validate", c.validateRule)
	g.POST("/rules/try", c.tryRule)
	g.GET("/rules/:id", c.editRule)
	g.POST("/rules/:id", c.saveRule)
	g.POST("/rules/:id/delete", c.deleteRule)
	g.POST("/ruleset/thresholds", c.thresholds)
	g.GET("/ruleset/diff", c.rulesetDiff)
	g.POST("/ruleset/publish", c.publish)
	g.GET("/ruleset/versions", c.versions)
	g.GET("/ruleset/versions/:n", c.version)
	g.POST("/ruleset/rollback", c.rollback)
}

// rules lists the draft.
func (c *Console) rules(ec echo.Context) error {
	d, err := c.get(ec, "/admin/ruleset/draft")
	if err != nil {
		return c.apiFail(ec, err)
	}
	p := &page{Title: "Rules", Nav: "rules", D: d}
	switch ec.QueryParam("notice") {
	case "deleted":
		p.Notice = "Rule deleted from the draft."
	case "published":
		p.Notice = "Published: the draft is live."
	case "rolledback":
		p.Notice = "Rolled back: the chosen version is live again, as a new version."
	case "thresholds":
		p.Notice = "Thresholds saved to the draft. Publish to make them live."
	}
	return c.render(ec, http.StatusOK, "rules", p)
}

func (c *Console) newRule(ec echo.Context) error {
	p := &page{Title: "New rule", Nav: "rules", D: map[string]any{"action": "deny", "mode": "active"}, X: map[string]any{"new": true}}
	return c.render(ec, http.StatusOK, "rule", p)
}

// editRule shows a draft rule in the editor (read-only for auditors).
func (c *Console) editRule(ec echo.Context) error {
	id := ec.Param("id")
	d, err := c.get(ec, "/admin/rules/"+url.PathEscape(id))
	if err != nil {
		return c.apiFail(ec, err)
	}
	p := &page{Title: "Rule " + id, Nav: "rules", D: d, X: map[string]any{}}
	if ec.QueryParam("notice") == "saved" {
		p.Notice = "Saved to the draft. Publish to make it live."
	}
	if st, err := c.get(ec, "/admin/rules/"+url.PathEscape(id)+"/stats"); err == nil {
		p.X["stats"] = st["stats"]
	}
	return c.render(ec, http.StatusOK, "rule", p)
}

// ruleFromForm reads the editor's fields as the API's rule JSON.
func ruleFromForm(ec echo.Context) map[string]any {
	r := map[string]any{
		"id":          strings.TrimSpace(ec.FormValue("id")),
		"name":        strings.TrimSpace(ec.FormValue("name")),
		"description": strings.TrimSpace(ec.FormValue("description")),
		"expression":  ec.FormValue("expression"),
		"action":      ec.FormValue("action"),
		"mode":        ec.FormValue("mode"),
		"reason":      strings.TrimSpace(ec.FormValue("reason")),
		"message":     strings.TrimSpace(ec.FormValue("message")),
	}
	if s, err := strconv.Atoi(strings.TrimSpace(ec.FormValue("score"))); err == nil {
		r["score"] = s
	}
	if v, err := strconv.Atoi(ec.FormValue("version")); err == nil && v > 0 {
		r["version"] = v
	}
	return r
}

// saveRule creates (POST /console/rules) or replaces a draft rule; a rule
// the API refuses comes back in the editor with every error.
func (c *Console) saveRule(ec echo.Context) error {
	r := ruleFromForm(ec)
	id := ec.Param("id")
	var err error
	if id == "" {
		err = c.call(ec, sessionOf(ec), http.MethodPost, "/admin/rules", r, nil)
		id, _ = r["id"].(string)
	} else {
		r["id"] = id
		err = c.call(ec, sessionOf(ec), http.MethodPut, "/admin/rules/"+url.PathEscape(id), r, nil)
	}
	var ae *apiError
	if errors.As(err, &ae) && (ae.Status == http.StatusUnprocessableEntity || ae.Status == http.StatusBadRequest || ae.Status == http.StatusConflict) {
		p := &page{Title: "Rule", Nav: "rules", D: r, Err: ae, X: map[string]any{"new": ec.Param("id") == ""}}
		return c.render(ec, ae.Status, "rule", p)
	}
	if err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/rules/"+url.PathEscape(id)+"?notice=saved")
}

func (c *Console) deleteRule(ec echo.Context) error {
	if err := c.call(ec, sessionOf(ec), http.MethodDelete, "/admin/rules/"+url.PathEscape(ec.Param("id")), nil, nil); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/rules?notice=deleted")
}

// suggestion finds expr-lang's did-you-mean in a compile message.
var suggestion = regexp.MustCompile("unknown name `([^`]+)`; did you mean `([^`]+)`")

// validation is one compile problem as the editor shows it.
type validation struct {
	Line, Column   int
	Message        string
	From, To       string // the did-you-mean: replace From with To
	Source, Marker string // the expression's line and a caret under the column
}

// validateRule checks the editor's expression as it is typed (htmx) with
// POST /admin/rules/validate, and answers the marks: line:column, the
// message, a caret under the spot, and the did-you-mean as a fix button.
func (c *Console) validateRule(ec echo.Context) error {
	expr := ec.FormValue("expression")
	p := &page{X: map[string]any{}}
	if strings.TrimSpace(expr) == "" {
		return c.fragment(ec, http.StatusOK, "rule", "validation", p)
	}
	err := c.call(ec, sessionOf(ec), http.MethodPost, "/admin/rules/validate", map[string]string{"expression": expr}, nil)
	var ae *apiError
	switch {
	case err == nil:
		p.X["valid"] = true
	case errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity:
		lines := strings.Split(expr, "\n")
		var vs []validation
		for _, e := range ae.Errors {
			v := validation{Line: e.Line, Column: e.Column, Message: e.Message}
			if m := suggestion.FindStringSubmatch(e.Message); m != nil {
				v.From, v.To = m[1], m[2]
			}
			if e.Line >= 1 && e.Line <= len(lines) {
				v.Source = lines[e.Line-1]
				if e.Column >= 1 {
					v.Marker = strings.Repeat(" ", min(e.Column-1, len(v.Source))) + "^"
				}
			}
			vs = append(vs, v)
		}
		if len(vs) == 0 {
			vs = append(vs, validation{Message: ae.Message})
		}
		p.X["errors"] = vs
	default:
		return c.apiFail(ec, err)
	}
	return c.fragment(ec, http.StatusOK, "rule", "validation", p)
}

// tryRule runs the editor's rule (or the whole draft) against a past
// decision or a pasted payment with POST /admin/rules/dry-run, which
// stores and counts nothing.
func (c *Console) tryRule(ec echo.Context) error {
	body := map[string]any{}
	if ec.FormValue("whole_draft") == "" {
		body["rule"] = ruleFromForm(ec)
	}
	if pay := strings.TrimSpace(ec.FormValue("payment")); pay != "" {
		if !json.Valid([]byte(pay)) {
			return c.fragment(ec, http.StatusOK, "rule", "tryresult", &page{Flash: "The pasted payment is not valid JSON."})
		}
		body["payment"] = json.RawMessage(pay)
	} else {
		body["decision_id"] = strings.TrimSpace(ec.FormValue("decision_id"))
	}
	var out map[string]any
	err := c.call(ec, sessionOf(ec), http.MethodPost, "/admin/rules/dry-run", body, &out)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status != http.StatusUnauthorized && ae.Status != http.StatusForbidden {
		return c.fragment(ec, http.StatusOK, "rule", "tryresult", &page{Err: ae})
	}
	if err != nil {
		return c.apiFail(ec, err)
	}
	return c.fragment(ec, http.StatusOK, "rule", "tryresult", &page{D: out})
}

// thresholds sets the draft's score thresholds (live with the next
// publish).
func (c *Console) thresholds(ec echo.Context) error {
	body := map[string]int{}
	for _, k := range []string{"challenge_threshold", "deny_threshold"} {
		n, err := strconv.Atoi(strings.TrimSpace(ec.FormValue(k)))
		if err != nil {
			return c.fail(ec, http.StatusBadRequest, k+" must be a whole number.")
		}
		body[k] = n
	}
	if err := c.call(ec, sessionOf(ec), http.MethodPut, "/admin/ruleset/draft", body, nil); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/rules?notice=thresholds")
}

// rulesetDiff shows what a publish would change (live → draft), or any
// from/to pair, with the publish form.
func (c *Console) rulesetDiff(ec echo.Context) error {
	from, to := ec.QueryParam("from"), ec.QueryParam("to")
	if from == "" {
		from = "live"
	}
	if to == "" {
		to = "draft"
	}
	d, err := c.get(ec, "/admin/ruleset/diff?"+url.Values{"from": {from}, "to": {to}}.Encode())
	if err != nil {
		return c.apiFail(ec, err)
	}
	p := &page{Title: "Diff " + from + " → " + to, Nav: "rules", D: d, X: map[string]any{"publishable": from == "live" && to == "draft"}}
	return c.render(ec, http.StatusOK, "diff", p)
}

func (c *Console) publish(ec echo.Context) error {
	body := map[string]string{"comment": strings.TrimSpace(ec.FormValue("comment"))}
	if err := c.call(ec, sessionOf(ec), http.MethodPost, "/admin/ruleset/publish", body, nil); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/ruleset/versions?notice=published")
}

func (c *Console) versions(ec echo.Context) error {
	q := url.Values{"limit": {"50"}}
	if b := ec.QueryParam("before"); b != "" {
		q.Set("before", b)
	}
	d, err := c.get(ec, "/admin/ruleset/versions?"+q.Encode())
	if err != nil {
		return c.apiFail(ec, err)
	}
	p := &page{Title: "Rule set versions", Nav: "rules", D: d}
	switch ec.QueryParam("notice") {
	case "published":
		p.Notice = "Published: the draft is live."
	case "rolledback":
		p.Notice = "Rolled back: the chosen version is live again, as a new version."
	}
	return c.render(ec, http.StatusOK, "versions", p)
}

// version shows one version, its rules and what it changed from the one
// before, with the rollback form.
func (c *Console) version(ec echo.Context) error {
	n, err := strconv.ParseInt(ec.Param("n"), 10, 64)
	if err != nil || n < 1 {
		return c.fail(ec, http.StatusNotFound, "No such version.")
	}
	d, err := c.get(ec, "/admin/ruleset/versions/"+strconv.FormatInt(n, 10))
	if err != nil {
		return c.apiFail(ec, err)
	}
	p := &page{Title: "Version " + strconv.FormatInt(n, 10), Nav: "rules", D: d, X: map[string]any{"n": n}}
	if n > 1 {
		if diff, err := c.get(ec, "/admin/ruleset/diff?"+url.Values{"from": {strconv.FormatInt(n-1, 10)}, "to": {strconv.FormatInt(n, 10)}}.Encode()); err == nil {
			p.X["diff"] = diff
		}
	}
	return c.render(ec, http.StatusOK, "version", p)
}

func (c *Console) rollback(ec echo.Context) error {
	n, err := strconv.ParseInt(ec.FormValue("version"), 10, 64)
	if err != nil || n < 1 {
		return c.fail(ec, http.StatusBadRequest, "Choose a version to roll back to.")
	}
	body := map[string]any{"version": n, "comment": strings.TrimSpace(ec.FormValue("comment"))}
	if err := c.call(ec, sessionOf(ec), http.MethodPost, "/admin/ruleset/rollback", body, nil); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/ruleset/versions?notice=rolledback")
}
