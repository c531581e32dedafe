package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

func (c *Console) registerReviews(g *echo.Group) {
	g.GET("/reviews", c.reviews)
	g.GET("/reviews/next", c.nextReview)
	g.GET("/reviews/:id", c.review)
	g.POST("/reviews/:id/claim", c.claimReview)
	g.POST("/reviews/:id/close", c.closeReview)
	g.GET("/cases", c.cases("cases"))
	g.GET("/library", c.cases("library"))
	g.POST("/cases", c.createCase)
	g.GET("/cases/:id", c.caseItem)
	g.POST("/cases/:id/notes", c.addNote)
	g.POST("/cases/:id/decisions", c.linkDecisions)
	g.POST("/cases/:id/close", c.closeCase)
}

// reviews is the queue, oldest first: j/k move, Enter opens (console.js).
func (c *Console) reviews(ec echo.Context) error {
	status := ec.QueryParam("status")
	if status != "claimed" && status != "closed" {
		status = "open"
	}
	q := url.Values{"status": {status}, "limit": {"100"}}
	for _, k := range []string{"queue", "assignee", "cursor"} {
		if v := strings.TrimSpace(ec.QueryParam(k)); v != "" {
			q.Set(k, v)
		}
	}
	d, err := c.get(ec, "/admin/reviews?"+q.Encode())
	if err != nil {
		return c.apiFail(ec, err)
	}
	p := &page{Title: "Review queue", Nav: "reviews", D: d, X: map[string]any{"status": status}}
	if ec.QueryParam("notice") == "empty" {
		p.Notice = "No open item is waiting."
	}
	return c.render(ec, http.StatusOK, "reviews", p)
}

// nextReview opens the oldest open item, or the queue when none waits.
func (c *Console) nextReview(ec echo.Context) error {
	d, err := c.get(ec, "/admin/reviews?status=open&limit=1")
	if err != nil {
		return c.apiFail(ec, err)
	}
	items, _ := d["items"].([]any)
	if len(items) == 0 {
		return ec.Redirect(http.StatusSeeOther, "/console/reviews?notice=empty")
	}
	it, _ := items[0].(map[string]any)
	return ec.Redirect(http.StatusSeeOther, "/console/reviews/"+url.PathEscape(str(it["id"])))
}

// review is one item: the why of its decision and the related decisions;
// c claims, l/f/u close as legit/fraud/unsure, n opens the next.
func (c *Console) review(ec echo.Context) error {
	d, err := c.get(ec, "/admin/reviews/"+url.PathEscape(ec.Param("id")))
	if err != nil {
		return c.apiFail(ec, err)
	}
	p := &page{Title: "Review " + str(d["id"]), Nav: "reviews", D: d, X: map[string]any{}}
	if ex, ok := d["explanation"].(map[string]any); ok {
		if ver, err := c.get(ec, "/admin/ruleset/versions/"+url.PathEscape(jsonNumber(ex["ruleset_version"]))); err == nil {
			p.X["expr"] = expressions(ver)
		}
	}
	p.X["mine"] = str(d["assignee"]) != "" && str(d["assignee"]) == sessionOf(ec).principal.Name
	switch ec.QueryParam("notice") {
	case "claimed":
		p.Notice = "Claimed: it is yours until the claim expires."
	case "closed":
		p.Notice = "Closed."
	}
	return c.render(ec, http.StatusOK, "review", p)
}

func (c *Console) claimReview(ec echo.Context) error {
	id := ec.Param("id")
	if err := c.call(ec, sessionOf(ec), http.MethodPost, "/admin/reviews/"+url.PathEscape(id)+"/claim", map[string]any{}, nil); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/reviews/"+url.PathEscape(id)+"?notice=claimed")
}

// closeReview closes an item with a resolution (feedback label, audited)
// and opens the next open item.
func (c *Console) closeReview(ec echo.Context) error {
	id := ec.Param("id")
	body := map[string]any{"resolution": ec.FormValue("resolution"), "note": strings.TrimSpace(ec.FormValue("note")), "tags": splitTags(ec.FormValue("tags"))}
	if err := c.call(ec, sessionOf(ec), http.MethodPost, "/admin/reviews/"+url.PathEscape(id)+"/close", body, nil); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/reviews/"+url.PathEscape(id)+"?notice=closed")
}

func splitTags(s string) []string {
	out := []string{}
	for _, t := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, t)
	}
	return out
}

// cases lists cases (all statuses) or the library (closed cases), with
// the library's filters.
func (c *Console) cases(kind string) echo.HandlerFunc {
	return func(ec echo.Context) error {
		q := url.Values{"limit": {"50"}}
		for _, k := range []string{"status", "tag", "rule", "entity", "outcome", "q", "cursor"} {
			if v := strings.TrimSpace(ec.QueryParam(k)); v != "" {
				q.Set(k, v)
			}
		}
		for _, k := range []string{"from", "to"} {
			if v := localTime(strings.TrimSpace(ec.QueryParam(k))); v != "" {
				q.Set(k, v)
			}
		}
		if kind == "library" {
			q.Set("status", "closed")
		}
		p := &page{Title: map[string]string{"cases": "Cases", "library": "Library"}[kind], Nav: kind, X: map[string]any{"kind": kind}}
		d, err := c.get(ec, "/admin/cases?"+q.Encode())
		if ae, ok := err.(*apiError); ok && ae.Status == http.StatusBadRequest {
			p.Err = ae
		} else if err != nil {
			return c.apiFail(ec, err)
		}
		p.D = d
		return c.render(ec, http.StatusOK, "cases", p)
	}
}

func (c *Console) createCase(ec echo.Context) error {
	body := map[string]any{"title": strings.TrimSpace(ec.FormValue("title")), "tags": splitTags(ec.FormValue("tags")), "entities": []any{}, "decisions": splitTags(ec.FormValue("decisions"))}
	if v := strings.TrimSpace(ec.FormValue("entity_value")); v != "" {
		body["entities"] = []any{map[string]string{"type": ec.FormValue("entity_type"), "value": v}}
	}
	var out map[string]any
	if err := c.call(ec, sessionOf(ec), http.MethodPost, "/admin/cases", body, &out); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/cases/"+url.PathEscape(str(out["id"])))
}

func (c *Console) caseItem(ec echo.Context) error {
	d, err := c.get(ec, "/admin/cases/"+url.PathEscape(ec.Param("id")))
	if err != nil {
		return c.apiFail(ec, err)
	}
	expires := c.cfg.Now().UTC().Add(30 * 24 * time.Hour).Format("2006-01-02T15:04")
	return c.render(ec, http.StatusOK, "case", &page{Title: "Case " + str(d["title"]), Nav: "cases", D: d, X: map[string]any{"expires": expires}})
}

func (c *Console) addNote(ec echo.Context) error {
	id := ec.Param("id")
	if err := c.call(ec, sessionOf(ec), http.MethodPost, "/admin/cases/"+url.PathEscape(id)+"/notes", map[string]string{"text": strings.TrimSpace(ec.FormValue("text"))}, nil); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/cases/"+url.PathEscape(id))
}

func (c *Console) linkDecisions(ec echo.Context) error {
	id := ec.Param("id")
	if err := c.call(ec, sessionOf(ec), http.MethodPost, "/admin/cases/"+url.PathEscape(id)+"/decisions", map[string]any{"decision_ids": splitTags(ec.FormValue("decision_ids"))}, nil); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/cases/"+url.PathEscape(id))
}

// closeCase closes a case with a resolution; as fraud it may block the
// case's entities on the chosen lists until an expiry (one audited action).
func (c *Console) closeCase(ec echo.Context) error {
	id := ec.Param("id")
	body := map[string]any{"status": "closed", "resolution": ec.FormValue("resolution")}
	if lists := splitTags(ec.FormValue("block_lists")); len(lists) > 0 && ec.FormValue("resolution") == "fraud" {
		block := map[string]any{"lists": lists}
		if x := localTime(strings.TrimSpace(ec.FormValue("block_expires"))); x != "" {
			block["expires_at"] = x
		}
		body["block"] = block
	}
	if err := c.call(ec, sessionOf(ec), http.MethodPatch, "/admin/cases/"+url.PathEscape(id), body, nil); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/cases/"+url.PathEscape(id))
}
