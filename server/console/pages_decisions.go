package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// registerPages adds every page behind the session check.
func (c *Console) registerPages(g *echo.Group) {
	g.GET("/", c.overview)
	g.GET("/decisions", c.decisions)
	g.GET("/decisions/:id", c.decision)
	g.POST("/decisions/:id/feedback", c.feedback)
	c.registerRules(g)
	c.registerOps(g)
	c.registerReviews(g)
}

// get reads one API resource into a map.
func (c *Console) get(ec echo.Context, path string) (map[string]any, error) {
	var out map[string]any
	err := c.call(ec, sessionOf(ec), http.MethodGet, path, nil, &out)
	return out, err
}

// localTime turns a datetime-local form value (UTC, as the form says) into
// RFC 3339; anything else passes through for the API to judge.
func localTime(v string) string {
	if v == "" {
		return ""
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC().Format(time.RFC3339)
		}
	}
	return v
}

// decisions is the search page, newest first, paged by cursor.
func (c *Console) decisions(ec echo.Context) error {
	q := url.Values{}
	for _, k := range []string{"transaction_id", "account_id", "card_fingerprint", "decision", "cursor"} {
		if v := strings.TrimSpace(ec.QueryParam(k)); v != "" {
			q.Set(k, v)
		}
	}
	for _, k := range []string{"from", "to"} {
		if v := localTime(strings.TrimSpace(ec.QueryParam(k))); v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", "50")
	p := &page{Title: "Decisions", Nav: "decisions"}
	d, err := c.get(ec, "/v1/decisions?"+q.Encode())
	if err != nil {
		ae, ok := err.(*apiError)
		if !ok || ae.Status != http.StatusBadRequest {
			return c.apiFail(ec, err)
		}
		p.Err = ae // a bad filter: show the form with the message
	}
	p.D = d
	next := ec.QueryParams()
	if nc, _ := d["next_cursor"].(string); nc != "" {
		next = cloneValues(next)
		next.Set("cursor", nc)
		p.X = map[string]any{"next": "/console/decisions?" + next.Encode()}
	}
	return c.render(ec, http.StatusOK, "decisions", p)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, xs := range v {
		out[k] = append([]string(nil), xs...)
	}
	return out
}

// decision is the "why" page of one decision: the explanation, each
// rule's expression from the version it ran on, and the feedback form.
func (c *Console) decision(ec echo.Context) error {
	id := ec.Param("id")
	d, err := c.get(ec, "/v1/decisions/"+url.PathEscape(id))
	if err != nil {
		return c.apiFail(ec, err)
	}
	p := &page{Title: "Decision " + id, Nav: "decisions", D: d, X: map[string]any{}}
	if v, ok := num(d["ruleset_version"]); ok && v > 0 {
		if ver, err := c.get(ec, "/admin/ruleset/versions/"+url.PathEscape(jsonNumber(d["ruleset_version"]))); err == nil {
			p.X["expr"] = expressions(ver)
		}
	}
	if nt := ec.QueryParam("notice"); nt == "feedback" {
		p.Notice = "Feedback recorded."
	}
	return c.render(ec, http.StatusOK, "decision", p)
}

// expressions maps rule id to expression in a version's spec.
func expressions(ver map[string]any) map[string]string {
	out := map[string]string{}
	spec, _ := ver["spec"].(map[string]any)
	rs, _ := spec["rules"].([]any)
	for _, r := range rs {
		m, _ := r.(map[string]any)
		id, _ := m["id"].(string)
		ex, _ := m["expression"].(string)
		out[id] = ex
	}
	return out
}

func jsonNumber(v any) string {
	if s, ok := v.(interface{ String() string }); ok {
		return s.String()
	}
	return ""
}

// feedback adds an analyst's label to a decision through the API's
// feedback route.
func (c *Console) feedback(ec echo.Context) error {
	id := ec.Param("id")
	body := map[string]string{"label": ec.FormValue("label"), "note": strings.TrimSpace(ec.FormValue("note"))}
	if err := c.call(ec, sessionOf(ec), http.MethodPost, "/v1/decisions/"+url.PathEscape(id)+"/feedback", body, nil); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/decisions/"+url.PathEscape(id)+"?notice=feedback")
}
