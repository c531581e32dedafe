package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

func (c *Console) registerOps(g *echo.Group) {
	g.GET("/backtests", c.backtests)
	g.POST("/backtests", c.startBacktest)
	g.GET("/backtests/:id", c.backtest)
	g.GET("/backtests/:id/progress", c.backtestProgress)
	g.POST("/backtests/:id/cancel", c.cancelBacktest)
	g.GET("/lists", c.lists)
	g.POST("/lists", c.createList)
	g.GET("/lists/:name", c.list)
	g.POST("/lists/:name/items", c.addListItem)
	g.POST("/lists/:name/items/delete", c.deleteListItem)
	g.GET("/features", c.simple("features", "Features", "/admin/features"))
	g.GET("/limits", c.limits)
	g.POST("/limits/override", c.putOverride)
	g.POST("/limits/override/delete", c.deleteOverride)
	g.GET("/stats", c.simple("stats", "Rule stats", "/admin/rules/stats"))
	g.GET("/audit", c.audit)
	g.GET("/keys", c.simple("keys", "API keys", "/admin/keys"))
	g.POST("/keys", c.createKey)
	g.POST("/keys/:id/revoke", c.revokeKey)
}

// simple is a page that shows one API resource.
func (c *Console) simple(name, title, apiPath string) echo.HandlerFunc {
	return func(ec echo.Context) error {
		d, err := c.get(ec, apiPath)
		if err != nil {
			return c.apiFail(ec, err)
		}
		return c.render(ec, http.StatusOK, name, &page{Title: title, Nav: name, D: d})
	}
}

// Backtests.

func (c *Console) backtests(ec echo.Context) error {
	d, err := c.get(ec, "/admin/backtests")
	if err != nil {
		return c.apiFail(ec, err)
	}
	now := c.cfg.Now().UTC()
	p := &page{Title: "Backtests", Nav: "backtests", D: d, X: map[string]any{
		"from": now.Add(-24 * time.Hour).Format("2006-01-02T15:04"), "to": now.Add(time.Minute).Format("2006-01-02T15:04"),
	}}
	return c.render(ec, http.StatusOK, "backtests", p)
}

// startBacktest starts the draft (or a version) against live over a time
// range and opens its page.
func (c *Console) startBacktest(ec echo.Context) error {
	cand := map[string]any{"draft": true}
	if v := strings.TrimSpace(ec.FormValue("version")); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return c.fail(ec, http.StatusBadRequest, "The version must be a number.")
		}
		cand = map[string]any{"version": n}
	}
	body := map[string]any{"candidate": cand, "from": localTime(ec.FormValue("from")), "to": localTime(ec.FormValue("to"))}
	if m := strings.TrimSpace(ec.FormValue("merchant_id")); m != "" {
		body["merchant_id"] = m
	}
	if o := ec.FormValue("decision"); o != "" {
		body["decision"] = o
	}
	var st map[string]any
	if err := c.call(ec, sessionOf(ec), http.MethodPost, "/admin/backtests", body, &st); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/backtests/"+url.PathEscape(str(st["id"])))
}

func (c *Console) backtestPage(ec echo.Context) (*page, error) {
	d, err := c.get(ec, "/admin/backtests/"+url.PathEscape(ec.Param("id")))
	if err != nil {
		return nil, err
	}
	p := &page{Title: "Backtest " + str(d["id"]), Nav: "backtests", D: d, X: map[string]any{}}
	prog, _ := d["progress"].(map[string]any)
	done, _ := num(prog["processed"])
	total, _ := num(prog["total"])
	pct := 0.0
	if total > 0 {
		pct = done / total * 100
	}
	state := str(d["state"])
	if state == "done" {
		pct = 100
	}
	p.X["pct"] = strconv.FormatFloat(pct, 'f', 1, 64)
	p.X["running"] = state == "queued" || state == "running"
	return p, nil
}

func (c *Console) backtest(ec echo.Context) error {
	p, err := c.backtestPage(ec)
	if err != nil {
		return c.apiFail(ec, err)
	}
	return c.render(ec, http.StatusOK, "backtest", p)
}

// backtestProgress is the progress bar htmx polls while the backtest runs;
// when it has ended, the page reloads to show the results.
func (c *Console) backtestProgress(ec echo.Context) error {
	p, err := c.backtestPage(ec)
	if err != nil {
		return c.apiFail(ec, err)
	}
	if running, _ := p.X["running"].(bool); !running {
		ec.Response().Header().Set("HX-Refresh", "true")
	}
	return c.fragment(ec, http.StatusOK, "backtest", "progress", p)
}

func (c *Console) cancelBacktest(ec echo.Context) error {
	id := ec.Param("id")
	if err := c.call(ec, sessionOf(ec), http.MethodDelete, "/admin/backtests/"+url.PathEscape(id), nil, nil); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/backtests/"+url.PathEscape(id))
}

// Lists.

func (c *Console) lists(ec echo.Context) error {
	d, err := c.get(ec, "/admin/lists")
	if err != nil {
		return c.apiFail(ec, err)
	}
	return c.render(ec, http.StatusOK, "lists", &page{Title: "Lists", Nav: "lists", D: d})
}

func (c *Console) createList(ec echo.Context) error {
	name := strings.TrimSpace(ec.FormValue("name"))
	body := map[string]string{"kind": ec.FormValue("kind"), "description": strings.TrimSpace(ec.FormValue("description"))}
	if err := c.call(ec, sessionOf(ec), http.MethodPut, "/admin/lists/"+url.PathEscape(name), body, nil); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/lists/"+url.PathEscape(name))
}

// list shows one list and its live items, paged by value.
func (c *Console) list(ec echo.Context) error {
	name := ec.Param("name")
	d, err := c.get(ec, "/admin/lists/"+url.PathEscape(name))
	if err != nil {
		return c.apiFail(ec, err)
	}
	q := url.Values{"limit": {"200"}}
	if a := ec.QueryParam("after"); a != "" {
		q.Set("after", a)
	}
	items, err := c.get(ec, "/admin/lists/"+url.PathEscape(name)+"/items?"+q.Encode())
	if err != nil {
		return c.apiFail(ec, err)
	}
	p := &page{Title: "List " + name, Nav: "lists", D: d, X: map[string]any{"items": items}}
	switch ec.QueryParam("notice") {
	case "added":
		p.Notice = "Item added: live for the next decision."
	case "removed":
		p.Notice = "Item removed."
	}
	return c.render(ec, http.StatusOK, "list", p)
}

func (c *Console) addListItem(ec echo.Context) error {
	name := ec.Param("name")
	item := map[string]any{"value": strings.TrimSpace(ec.FormValue("value"))}
	if r := strings.TrimSpace(ec.FormValue("reason")); r != "" {
		item["reason"] = r
	}
	if x := localTime(strings.TrimSpace(ec.FormValue("expires_at"))); x != "" {
		item["expires_at"] = x
	}
	if err := c.call(ec, sessionOf(ec), http.MethodPost, "/admin/lists/"+url.PathEscape(name)+"/items", item, nil); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/lists/"+url.PathEscape(name)+"?notice=added")
}

func (c *Console) deleteListItem(ec echo.Context) error {
	name := ec.Param("name")
	q := url.Values{"value": {ec.FormValue("value")}}
	if err := c.call(ec, sessionOf(ec), http.MethodDelete, "/admin/lists/"+url.PathEscape(name)+"/items?"+q.Encode(), nil, nil); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/lists/"+url.PathEscape(name)+"?notice=removed")
}

// Limits: the policy, and one entity's limits and override on request.
func (c *Console) limits(ec echo.Context) error {
	d, err := c.get(ec, "/admin/limits/policy")
	if err != nil {
		return c.apiFail(ec, err)
	}
	p := &page{Title: "Limits", Nav: "limits", D: d, X: map[string]any{"expires": c.cfg.Now().UTC().Add(30 * 24 * time.Hour).Format("2006-01-02T15:04")}}
	typ, id := strings.TrimSpace(ec.QueryParam("entity_type")), strings.TrimSpace(ec.QueryParam("id"))
	if typ != "" && id != "" {
		e, err := c.get(ec, "/admin/limits/"+url.PathEscape(typ)+"/"+url.PathEscape(id))
		if ae, ok := err.(*apiError); ok {
			p.Err = ae
		} else if err != nil {
			return err
		}
		p.X["entity"] = e
	}
	return c.render(ec, http.StatusOK, "limits", p)
}

// limitsTarget is the limits page of one entity.
func limitsTarget(typ, id string) string {
	return "/console/limits?" + url.Values{"entity_type": {typ}, "id": {id}}.Encode()
}

// putOverride sets an entity's limits override (amounts in minor units).
func (c *Console) putOverride(ec echo.Context) error {
	typ, id := ec.FormValue("entity_type"), strings.TrimSpace(ec.FormValue("id"))
	body := map[string]any{"currency": strings.TrimSpace(ec.FormValue("currency")), "reason": strings.TrimSpace(ec.FormValue("reason"))}
	for _, k := range []string{"single_max", "daily_max"} {
		if v := strings.TrimSpace(ec.FormValue(k)); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return c.fail(ec, http.StatusBadRequest, k+" must be a whole number of minor units.")
			}
			body[k] = n
		}
	}
	if x := localTime(strings.TrimSpace(ec.FormValue("expires_at"))); x != "" {
		body["expires_at"] = x
	}
	if err := c.call(ec, sessionOf(ec), http.MethodPut, "/admin/limits/"+url.PathEscape(typ)+"/"+url.PathEscape(id), body, nil); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, limitsTarget(typ, id))
}

func (c *Console) deleteOverride(ec echo.Context) error {
	typ, id := ec.FormValue("entity_type"), strings.TrimSpace(ec.FormValue("id"))
	if err := c.call(ec, sessionOf(ec), http.MethodDelete, "/admin/limits/"+url.PathEscape(typ)+"/"+url.PathEscape(id), nil, nil); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, limitsTarget(typ, id))
}

// Audit trail with its filters.
func (c *Console) audit(ec echo.Context) error {
	q := url.Values{"limit": {"100"}}
	for _, k := range []string{"actor", "action", "target", "cursor"} {
		if v := strings.TrimSpace(ec.QueryParam(k)); v != "" {
			q.Set(k, v)
		}
	}
	for _, k := range []string{"from", "to"} {
		if v := localTime(strings.TrimSpace(ec.QueryParam(k))); v != "" {
			q.Set(k, v)
		}
	}
	p := &page{Title: "Audit trail", Nav: "audit"}
	d, err := c.get(ec, "/admin/audit?"+q.Encode())
	if ae, ok := err.(*apiError); ok && ae.Status == http.StatusBadRequest {
		p.Err = ae
	} else if err != nil {
		return c.apiFail(ec, err)
	}
	p.D = d
	if nc := str(d["next_cursor"]); nc != "" {
		next := cloneValues(ec.QueryParams())
		next.Set("cursor", nc)
		p.X = map[string]any{"next": "/console/audit?" + next.Encode()}
	}
	return c.render(ec, http.StatusOK, "audit", p)
}

// API keys (admins): the secret of a new key is shown once, on the answer
// page, and never again.
func (c *Console) createKey(ec echo.Context) error {
	body := map[string]string{"name": strings.TrimSpace(ec.FormValue("name")), "role": ec.FormValue("role")}
	var out map[string]any
	if err := c.call(ec, sessionOf(ec), http.MethodPost, "/admin/keys", body, &out); err != nil {
		return c.apiFail(ec, err)
	}
	d, err := c.get(ec, "/admin/keys")
	if err != nil {
		return c.apiFail(ec, err)
	}
	p := &page{Title: "API keys", Nav: "keys", D: d, X: map[string]any{"created": out}}
	return c.render(ec, http.StatusOK, "keys", p)
}

func (c *Console) revokeKey(ec echo.Context) error {
	if err := c.call(ec, sessionOf(ec), http.MethodDelete, "/admin/keys/"+url.PathEscape(ec.Param("id")), nil, nil); err != nil {
		return c.apiFail(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, "/console/keys")
}
