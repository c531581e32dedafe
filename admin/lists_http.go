package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
)

// listJSON is a list on the wire, with the live rules that name it.
type listJSON struct {
	features.List
	UsedBy []string `json:"used_by,omitempty"`
}

// putListJSON is the body of PUT /admin/lists/{name}. kind is required to
// create a list and may be left out to update its description.
type putListJSON struct {
	Kind        string `json:"kind"`
	Description string `json:"description"`
}

// itemJSON is one item in the body of POST /admin/lists/{name}/items.
type itemJSON struct {
	Value     string `json:"value"`
	ExpiresAt string `json:"expires_at"`
	Reason    string `json:"reason"`
}

// addItemsJSON is one item, or several under "items".
type addItemsJSON struct {
	itemJSON
	Items []itemJSON `json:"items"`
}

func (a *API) listLists(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"lists": a.cfg.Lists.All()})
}

func (a *API) getList(c echo.Context) error {
	name := c.Param("name")
	l, err := a.cfg.Lists.Get(name)
	if err != nil {
		return err
	}
	live, _, err := a.liveSpec()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listJSON{List: l, UsedBy: rulesUsingList(live, name)})
}

// putList is PUT /admin/lists/{name}: creates a list (201) or updates its
// description (200). Changing the kind of a list that holds items is a
// conflict.
func (a *API) putList(c echo.Context) error {
	name := c.Param("name")
	var in putListJSON
	if err := a.bind(c, &in, false); err != nil {
		return err
	}
	ctx := c.Request().Context()
	old, err := a.cfg.Lists.Get(name)
	exists := err == nil
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return err
	}
	kind := in.Kind
	if kind == "" && exists {
		kind = old.Kind
	}
	l, err := a.cfg.Lists.Put(features.List{Name: name, Kind: kind, Description: in.Description, Author: engine.Actor(ctx)})
	if err != nil {
		return err
	}
	status, action := http.StatusCreated, "list.create"
	var before any
	if exists {
		status, action, before = http.StatusOK, "list.update", old
	}
	if err := a.record(ctx, action, "list:"+name, before, l); err != nil {
		return err
	}
	return c.JSON(status, l)
}

// deleteList is DELETE /admin/lists/{name}. A list a live rule names is
// not deleted (409 naming the rules): the rule would silently stop
// matching.
func (a *API) deleteList(c echo.Context) error {
	name := c.Param("name")
	ctx := c.Request().Context()
	a.mu.Lock()
	defer a.mu.Unlock()
	old, err := a.cfg.Lists.Get(name)
	if err != nil {
		return err
	}
	live, _, err := a.liveSpec()
	if err != nil {
		return err
	}
	if ids := rulesUsingList(live, name); len(ids) > 0 {
		return fmt.Errorf("list %q is used by live %s: %w", name, ruleNames(ids), engine.ErrConflict)
	}
	if err := a.canaryUses(func(s rules.Spec) []string { return rulesUsingList(s, name) }, fmt.Sprintf("list %q", name)); err != nil {
		return err
	}
	if err := a.cfg.Lists.Delete(name); err != nil {
		return err
	}
	if err := a.record(ctx, "list.delete", "list:"+name, old, nil); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// ruleNames is `rule "a"` or `rules "a", "b"`.
func ruleNames(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = fmt.Sprintf("%q", id)
	}
	if len(ids) == 1 {
		return "rule " + q[0]
	}
	return "rules " + strings.Join(q, ", ")
}

// listItems is GET /admin/lists/{name}/items?after=&limit=: live items in
// value order; next_after continues.
func (a *API) listItems(c echo.Context) error {
	limit, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	items, more, err := a.cfg.Lists.Items(c.Param("name"), c.QueryParam("after"), int(limit))
	if err != nil {
		return err
	}
	out := struct {
		Items     []features.Item `json:"items"`
		NextAfter string          `json:"next_after,omitempty"`
	}{Items: items}
	if more {
		out.NextAfter = items[len(items)-1].Value
	}
	return c.JSON(http.StatusOK, out)
}

// addItems is POST /admin/lists/{name}/items: one item object, or
// {"items": [...]}, all or nothing. Live for the next decision.
func (a *API) addItems(c echo.Context) error {
	name := c.Param("name")
	var in addItemsJSON
	if err := a.bind(c, &in, false); err != nil {
		return err
	}
	batch := in.Items
	if batch == nil {
		batch = []itemJSON{in.itemJSON}
	} else if in.itemJSON != (itemJSON{}) {
		return engine.Invalid("items", "ambiguous", `send one item, or several as {"items": [...]}, not both`)
	}
	ctx := c.Request().Context()
	actor := engine.Actor(ctx)
	items := make([]features.Item, len(batch))
	for i, it := range batch {
		items[i] = features.Item{Value: it.Value, Reason: it.Reason, Author: actor}
		if it.ExpiresAt == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, it.ExpiresAt)
		if err != nil {
			field := "expires_at"
			if in.Items != nil {
				field = fmt.Sprintf("items[%d].expires_at", i)
			}
			return engine.Invalid(field, "invalid_time", "expires_at must be an RFC 3339 time, such as 2026-01-02T15:04:05Z")
		}
		items[i].ExpiresAt = t
	}
	stored, err := a.cfg.Lists.AddItems(name, items)
	if err != nil {
		return err
	}
	if err := a.record(ctx, "list.items.add", "list:"+name, nil, stored); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"items": stored})
}

// deleteItem is DELETE /admin/lists/{name}/items/{value}, or
// .../items?value= for values holding a '/' such as CIDR ranges (an
// escaped or plain '/' in the path works too).
func (a *API) deleteItem(c echo.Context) error {
	name := c.Param("name")
	value := c.QueryParam("value")
	if value == "" {
		v, err := pathParam(c, "*")
		if err != nil {
			return err
		}
		value = v
	}
	if value == "" {
		return engine.Invalid("value", "required", "name the item: .../items/{value} or .../items?value=")
	}
	ctx := c.Request().Context()
	old, err := a.cfg.Lists.DeleteItem(name, value)
	if err != nil {
		return err
	}
	if err := a.record(ctx, "list.item.delete", "list:"+name, old, nil); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
