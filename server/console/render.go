package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

// page is what every template gets. D holds the main API answer, X any
// other data the page needs.
type page struct {
	Title string
	Nav   string
	User  engine.Principal
	CSRF  string
	// CanEdit is true for analysts and admins: auditors see no edit
	// controls (and the API refuses their changes anyway).
	CanEdit bool
	IsAdmin bool
	Flash   string
	Notice  string
	Err     *apiError
	Next    string
	Q       url.Values
	D       map[string]any
	X       map[string]any
}

// parsePages parses every page template with the layout and the partials.
func parsePages() (map[string]*template.Template, error) {
	files, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" || name == "partials" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/partials.html", f)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", f, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes page name (its "layout", or only the template named by the
// HX-Target-less fragment when frag is given) with status.
func (c *Console) render(ec echo.Context, status int, name string, p *page) error {
	return c.renderTemplate(ec, status, name, "layout", p)
}

// fragment writes one named template of page name, for htmx swaps.
func (c *Console) fragment(ec echo.Context, status int, name, tmpl string, p *page) error {
	return c.renderTemplate(ec, status, name, tmpl, p)
}

func (c *Console) renderTemplate(ec echo.Context, status int, name, tmpl string, p *page) error {
	t, ok := c.pages[name]
	if !ok {
		return fmt.Errorf("no console page %q", name)
	}
	if sess := sessionOf(ec); sess != nil {
		p.User, p.CSRF = sess.principal, sess.csrf
		p.CanEdit = p.User.Role == engine.RoleAnalyst || p.User.Role == engine.RoleAdmin
		p.IsAdmin = p.User.Role == engine.RoleAdmin
	}
	if p.Q == nil {
		p.Q = ec.QueryParams()
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tmpl, p); err != nil {
		return fmt.Errorf("render %s/%s: %w", name, tmpl, err)
	}
	return ec.HTMLBlob(status, buf.Bytes())
}

// fail answers an error page (or, for htmx, an error fragment).
func (c *Console) fail(ec echo.Context, status int, msg string) error {
	p := &page{Title: http.StatusText(status), Flash: msg}
	if ec.Request().Header.Get("HX-Request") != "" {
		return c.fragment(ec, status, "error", "flash", p)
	}
	return c.render(ec, status, "error", p)
}

// apiFail shows an API error: on its own page, or for htmx as a fragment.
// The API's status is kept, so an auditor's change is 403 here too.
func (c *Console) apiFail(ec echo.Context, err error) error {
	ae, ok := err.(*apiError)
	if !ok {
		return err
	}
	if ae.Status == http.StatusUnauthorized {
		// The key was revoked since sign-in: the session ends with it.
		if ck, cerr := ec.Request().Cookie(cookieName); cerr == nil {
			if err := c.sessions.end(ec.Request().Context(), ck.Value); err != nil {
				c.cfg.Log.Error("console session not ended", "err", err)
			}
		}
	}
	p := &page{Title: http.StatusText(ae.Status), Err: ae}
	if ec.Request().Header.Get("HX-Request") != "" {
		return c.fragment(ec, ae.Status, "error", "flash", p)
	}
	return c.render(ec, ae.Status, "error", p)
}

var funcs = template.FuncMap{
	"json": func(v any) string {
		// The template escapes the text; JSON's own HTML escaping would
		// show \u003c to the reader.
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fmt.Sprint(v)
		}
		return strings.TrimSuffix(b.String(), "\n")
	},
	"money": func(amount any, currency any) string {
		n, ok := num(amount)
		if !ok {
			return fmt.Sprint(amount)
		}
		cur := fmt.Sprint(currency)
		exp := minorUnits(cur)
		return strconv.FormatFloat(n/math.Pow10(exp), 'f', exp, 64) + " " + cur
	},
	"ts": func(v any) string {
		s, _ := v.(string)
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return s
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"pct": func(v any) string {
		n, ok := num(v)
		if !ok {
			return "—"
		}
		return strconv.FormatFloat(n*100, 'f', 1, 64) + "%"
	},
	"num": func(v any) string {
		if v == nil {
			return ""
		}
		n, ok := num(v)
		if !ok {
			return fmt.Sprint(v)
		}
		return strconv.FormatFloat(n, 'f', -1, 64)
	},
	"path": url.PathEscape,
	"list": func(xs ...string) []string { return xs },
	"query": func(kv ...string) string {
		q := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				q.Set(kv[i], kv[i+1])
			}
		}
		return q.Encode()
	},
	"str": func(v any) string {
		if v == nil {
			return ""
		}
		return fmt.Sprint(v)
	},
	"join": func(v any, sep string) string {
		xs, _ := v.([]any)
		out := make([]string, len(xs))
		for i, x := range xs {
			out[i] = fmt.Sprint(x)
		}
		return strings.Join(out, sep)
	},
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
	"svg": func(s string) template.HTML {
		// Only the chart renderer's own output (chart.go) reaches here: it
		// escapes every text it puts in the SVG.
		return template.HTML(s) //nolint:gosec // built by chart.go from escaped parts
	},
}

// num reads a JSON number however it was decoded.
func num(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	}
	return 0, false
}

// minorUnits is the number of decimals of a currency's minor unit (ISO
// 4217), as limits.MinorUnits has it; the console may not import
// features.
func minorUnits(currency string) int {
	switch currency {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	}
	return 2
}
