package review

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

type newCaseJSON struct {
	Title     string   `json:"title"`
	Tags      []string `json:"tags"`
	Entities  []Entity `json:"entities"`
	Decisions []string `json:"decisions"`
	Links     []string `json:"links"`
}

// createCase is POST /admin/cases.
func (h handlers) createCase(c echo.Context) error {
	var in newCaseJSON
	if err := bind(c, &in, false); err != nil {
		return err
	}
	ctx := c.Request().Context()
	cs, err := h.cs.Create(ctx, NewCase(in))
	if err != nil {
		return err
	}
	if err := record(ctx, h.cs.cfg.Audit, "case.create", "case:"+cs.ID, nil, cs); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, cs)
}

// getCase is GET /admin/cases/{id}.
func (h handlers) getCase(c echo.Context) error {
	cs, err := h.cs.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, cs)
}

type patchJSON struct {
	Title      *string    `json:"title"`
	Status     *string    `json:"status"`
	Assignee   *string    `json:"assignee"`
	Tags       *[]string  `json:"tags"`
	Links      *[]string  `json:"links"`
	Resolution *string    `json:"resolution"`
	Block      *blockJSON `json:"block"`
}

type blockJSON struct {
	Lists     []string  `json:"lists"`
	ExpiresAt time.Time `json:"expires_at"`
}

// patchCase is PATCH /admin/cases/{id}.
func (h handlers) patchCase(c echo.Context) error {
	var in patchJSON
	if err := bind(c, &in, false); err != nil {
		return err
	}
	p := Patch{Title: in.Title, Status: in.Status, Assignee: in.Assignee, Tags: in.Tags, Links: in.Links, Resolution: in.Resolution}
	if in.Block != nil {
		p.Block = &Block{Lists: in.Block.Lists, ExpiresAt: in.Block.ExpiresAt}
	}
	res, err := h.cs.Patch(c.Request().Context(), c.Param("id"), p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, struct {
		Case
		LabelledFraud []string       `json:"labelled_fraud,omitempty"`
		BlockedNow    []BlockedEntry `json:"blocked_now,omitempty"`
	}{res.Case, res.Labelled, res.Blocked})
}

// addNote is POST /admin/cases/{id}/notes.
func (h handlers) addNote(c echo.Context) error {
	var in struct {
		Text string `json:"text"`
	}
	if err := bind(c, &in, false); err != nil {
		return err
	}
	ctx := c.Request().Context()
	cs, err := h.cs.AddNote(ctx, c.Param("id"), in.Text)
	if err != nil {
		return err
	}
	if err := record(ctx, h.cs.cfg.Audit, "case.note.add", "case:"+cs.ID, nil, cs.Notes[len(cs.Notes)-1]); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, cs)
}

// addDecisions is POST /admin/cases/{id}/decisions.
func (h handlers) addDecisions(c echo.Context) error {
	var in struct {
		DecisionIDs []string `json:"decision_ids"`
	}
	if err := bind(c, &in, false); err != nil {
		return err
	}
	ctx := c.Request().Context()
	cs, err := h.cs.AddDecisions(ctx, c.Param("id"), in.DecisionIDs)
	if err != nil {
		return err
	}
	if err := record(ctx, h.cs.cfg.Audit, "case.decisions.add", "case:"+cs.ID, nil, in.DecisionIDs); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, cs)
}

// caseQuery reads the library's filters from the query string.
func caseQuery(c echo.Context) (CaseQuery, error) {
	f := CaseQuery{
		Status: c.QueryParam("status"), Tag: c.QueryParam("tag"), Rule: c.QueryParam("rule"), Entity: c.QueryParam("entity"),
		Outcome: engine.Outcome(c.QueryParam("outcome")), Text: c.QueryParam("q"), Cursor: c.QueryParam("cursor"),
	}
	switch {
	case f.Status != "" && f.Status != CaseOpen && f.Status != CaseClosed:
		return f, engine.Invalid("status", "invalid_status", "status must be open or closed")
	case f.Outcome != "" && !f.Outcome.Valid():
		return f, engine.Invalid("outcome", "invalid_decision", "outcome must be allow, challenge or deny")
	case f.Cursor != "" && !strings.HasPrefix(f.Cursor, "case_"):
		return f, engine.Invalid("cursor", "invalid_cursor", "cursor is not one this server issued")
	case len(f.Text) > 256:
		return f, engine.Invalid("q", "too_long", "q is longer than 256 bytes")
	}
	var err error
	if f.From, err = engine.ParseTime("from", c.QueryParam("from")); err != nil {
		return f, err
	}
	if f.To, err = engine.ParseTime("to", c.QueryParam("to")); err != nil {
		return f, err
	}
	f.Limit, err = queryInt(c, "limit", DefaultPage, 1, MaxPage)
	return f, err
}

// listCases is GET /admin/cases: newest first, filtered, paged.
func (h handlers) listCases(c echo.Context) error {
	f, err := caseQuery(c)
	if err != nil {
		return err
	}
	cases, next, err := h.cs.Search(c.Request().Context(), f)
	if err != nil {
		return err
	}
	if cases == nil {
		cases = []Case{}
	}
	return c.JSON(http.StatusOK, struct {
		Cases      []Case `json:"cases"`
		NextCursor string `json:"next_cursor,omitempty"`
	}{cases, next})
}

// exportCases is GET /admin/cases/export: the cases matching the filters
// as JSONL, one case per line, newest first. It examines at most
// maxCaseScan cases from the cursor on and is bounded by the request
// timeout; a larger library is exported in slices of from and to.
func (h handlers) exportCases(c echo.Context) error {
	f, err := caseQuery(c)
	if err != nil {
		return err
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "application/x-ndjson")
	w.Header().Set(echo.HeaderContentDisposition, `attachment; filename="cases.jsonl"`)
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	_, err = h.cs.Each(c.Request().Context(), f, func(cs Case) error { return enc.Encode(cs) })
	if err != nil {
		// The status is sent: the stream ends short, and the log says why.
		h.cs.cfg.Log.Error("export cases", "err", err)
	}
	return nil
}
