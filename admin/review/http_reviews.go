package review

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

// itemJSON is an item with its age.
type itemJSON struct {
	Item
	// AgeSeconds is the time since the decision, in whole seconds.
	AgeSeconds int64 `json:"age_seconds"`
}

func (h handlers) withAge(it Item) itemJSON {
	return itemJSON{Item: it, AgeSeconds: int64(h.q.now().Sub(it.OpenedAt) / time.Second)}
}

// listItems is GET /admin/reviews.
func (h handlers) listItems(c echo.Context) error {
	f := ItemQuery{
		Status: Status(c.QueryParam("status")), Queue: c.QueryParam("queue"), Assignee: c.QueryParam("assignee"),
		Cursor: c.QueryParam("cursor"),
	}
	switch f.Status {
	case "", StatusOpen, StatusClaimed, StatusClosed:
	default:
		return engine.Invalid("status", "invalid_status", "status must be open, claimed or closed")
	}
	switch c.QueryParam("order") {
	case "", "oldest":
	case "newest":
		f.Newest = true
	default:
		return engine.Invalid("order", "invalid_order", "order must be oldest or newest")
	}
	var err error
	if f.Limit, err = queryInt(c, "limit", DefaultPage, 1, MaxPage); err != nil {
		return err
	}
	items, next, err := h.q.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := struct {
		Items      []itemJSON `json:"items"`
		NextCursor string     `json:"next_cursor,omitempty"`
	}{Items: make([]itemJSON, len(items)), NextCursor: next}
	for i, it := range items {
		out.Items[i] = h.withAge(it)
	}
	return c.JSON(http.StatusOK, out)
}

// getItem is GET /admin/reviews/{id}: the item, the decision's explanation
// and the related decisions (?days=, default 7).
func (h handlers) getItem(c echo.Context) error {
	days, err := queryInt(c, "days", DefaultRelatedDays, 1, MaxRelatedDays)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	it, err := h.q.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	out := struct {
		itemJSON
		// Explanation is null when the decision is no longer kept.
		Explanation *explanationJSON `json:"explanation"`
		Related     []Related        `json:"related"`
		RelatedDays int              `json:"related_days"`
	}{itemJSON: h.withAge(it), Related: []Related{}, RelatedDays: days}
	rec, err := h.q.cfg.Decisions.Get(ctx, it.DecisionID)
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return c.JSON(http.StatusOK, out)
	case err != nil:
		return err
	}
	exp := toExplanation(rec)
	out.Explanation = &exp
	if out.Related, err = RelatedTo(ctx, h.q.cfg.Decisions, rec, h.q.now(), days); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// claim is POST /admin/reviews/{id}/claim.
func (h handlers) claim(c echo.Context) error {
	it, err := h.q.Claim(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.withAge(it))
}

type closeJSON struct {
	Resolution string   `json:"resolution"`
	Note       string   `json:"note"`
	Tags       []string `json:"tags"`
}

// closeItem is POST /admin/reviews/{id}/close.
func (h handlers) closeItem(c echo.Context) error {
	var in closeJSON
	if err := bind(c, &in, false); err != nil {
		return err
	}
	ctx := c.Request().Context()
	id := c.Param("id")
	it, fb, err := h.q.CloseItem(ctx, id, Closing{Resolution: in.Resolution, Note: in.Note, Tags: in.Tags})
	if err != nil {
		return err
	}
	out := struct {
		itemJSON
		Feedback *feedbackJSON `json:"feedback,omitempty"`
	}{itemJSON: h.withAge(it)}
	if fb != nil {
		label, _ := labelOf(it.Resolution)
		out.Feedback = toFeedback(fb, label)
	}
	if err := record(ctx, h.q.cfg.Audit, "review.close", "review:"+id, nil, out); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// getPolicy is GET /admin/reviews/policy.
func (h handlers) getPolicy(c echo.Context) error {
	p := h.q.Policy()
	if p.Rules == nil {
		p.Rules = []PolicyRule{}
	}
	return c.JSON(http.StatusOK, p)
}

// putPolicy is PUT /admin/reviews/policy: the whole policy, replaced.
func (h handlers) putPolicy(c echo.Context) error {
	var p Policy
	if err := bind(c, &p, false); err != nil {
		return err
	}
	ctx := c.Request().Context()
	before, err := h.q.SetPolicy(ctx, p)
	if err != nil {
		return err
	}
	after := h.q.Policy()
	if err := record(ctx, h.q.cfg.Audit, "review.policy.update", "review_policy", before, after); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, after)
}

// feedbackJSON is what closing an item changed through feedback.
type feedbackJSON struct {
	Label       string         `json:"label"`
	Added       bool           `json:"added"`
	Applied     bool           `json:"applied"`
	Entity      string         `json:"entity,omitempty"`
	TrustBefore *float64       `json:"trust_before,omitempty"`
	TrustAfter  *float64       `json:"trust_after,omitempty"`
	Blocked     []BlockedEntry `json:"blocked,omitempty"`
}

func toFeedback(fb *engine.FeedbackResult, label string) *feedbackJSON {
	out := &feedbackJSON{Label: label, Added: fb.Added, Applied: fb.Effect.Applied, Entity: fb.Effect.Entity}
	if e := fb.Effect; e.Entity != "" {
		out.TrustBefore, out.TrustAfter = &e.TrustBefore, &e.TrustAfter
	}
	for _, b := range fb.Effect.Blocked {
		out.Blocked = append(out.Blocked, BlockedEntry{List: b.List, Value: b.Value, ExpiresAt: b.ExpiresAt.UTC()})
	}
	return out
}
