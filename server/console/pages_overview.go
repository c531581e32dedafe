package console

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// overviewMaxDecisions bounds how many decisions the overview reads (four
// pages of the search API); past it the charts say they are truncated.
const overviewMaxDecisions = 2000

// overview draws decisions per minute by outcome, the degraded rate and the
// top rules by hits over the last hours.
func (c *Console) overview(ec echo.Context) error {
	hours, _ := strconv.Atoi(ec.QueryParam("hours"))
	if hours != 1 && hours != 6 && hours != 24 {
		hours = 3
	}
	step := time.Minute
	switch hours {
	case 6:
		step = 5 * time.Minute
	case 24:
		step = 15 * time.Minute
	}
	now := c.cfg.Now().UTC()
	from := now.Add(-time.Duration(hours) * time.Hour).Truncate(step)
	n := int(now.Sub(from)/step) + 1
	s := newSeries(from, step, n)
	total, degraded, truncated := 0, 0, false
	cursor := ""
	for {
		q := url.Values{"from": {from.Format(time.RFC3339)}, "limit": {"500"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		d, err := c.get(ec, "/v1/decisions?"+q.Encode())
		if err != nil {
			return c.apiFail(ec, err)
		}
		ds, _ := d["decisions"].([]any)
		for _, x := range ds {
			m, _ := x.(map[string]any)
			at, _ := time.Parse(time.RFC3339Nano, str(m["evaluated_at"]))
			deg, _ := m["degraded"].(bool)
			s.add(at, str(m["decision"]), deg)
			total++
			if deg {
				degraded++
			}
		}
		cursor, _ = d["next_cursor"].(string)
		if cursor == "" {
			break
		}
		if total >= overviewMaxDecisions {
			truncated = true
			break
		}
	}
	p := &page{Title: "Overview", Nav: "overview", X: map[string]any{
		"hours": hours, "total": total, "degraded": degraded, "truncated": truncated,
		"bars": s.stackedBars(), "degradedLine": s.degradedLine(),
	}}
	if total > 0 {
		p.X["degradedRate"] = float64(degraded) / float64(total)
	}
	if st, err := c.get(ec, "/admin/rules/stats"); err == nil {
		labels, values := topRules(st, 10)
		p.X["topRules"] = hbars(labels, values)
	}
	return c.render(ec, http.StatusOK, "overview", p)
}

// topRules are the n rules with the most hits (active and shadow).
func topRules(st map[string]any, n int) ([]string, []int) {
	type hit struct {
		rule string
		n    int
	}
	var hits []hit
	rs, _ := st["rules"].([]any)
	for _, r := range rs {
		m, _ := r.(map[string]any)
		h, _ := m["hits"].(map[string]any)
		t, _ := num(h["total"])
		if t > 0 {
			hits = append(hits, hit{str(m["rule"]), int(t)})
		}
	}
	slices.SortFunc(hits, func(a, b hit) int { return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.rule, b.rule)) })
	if len(hits) > n {
		hits = hits[:n]
	}
	labels, values := make([]string, len(hits)), make([]int, len(hits))
	for i, h := range hits {
		labels[i], values[i] = h.rule, h.n
	}
	return labels, values
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
