package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

// Feedbacker takes feedback labels on decisions (engine.Engine).
type Feedbacker interface {
	Feedback(ctx context.Context, decisionID string, l engine.Label) (engine.FeedbackResult, error)
	FeedbackByTransaction(ctx context.Context, transactionID string, l engine.Label) (engine.FeedbackResult, error)
}

// registerFeedback adds the feedback routes: the gateway reports challenge
// results and chargebacks, analysts confirm fraud or genuine payments.
func (s *Server) registerFeedback(v1 *echo.Group) {
	if s.cfg.Feedback == nil {
		return
	}
	who := s.Require(engine.RoleGateway, engine.RoleAnalyst)
	v1.POST("/decisions/:id/feedback", s.postDecisionFeedback, who)
	v1.POST("/feedback", s.postFeedback, who)
}

// feedbackJSON is the body of both feedback routes; transaction_id is read
// by POST /v1/feedback only.
type feedbackJSON struct {
	TransactionID string `json:"transaction_id"`
	Label         string `json:"label"`
	Note          string `json:"note"`
}

// feedbackResultJSON is the answer of both feedback routes.
type feedbackResultJSON struct {
	DecisionID    string `json:"decision_id"`
	TransactionID string `json:"transaction_id"`
	Label         string `json:"label"`
	// Added is false when the decision already carried the label: nothing
	// changed.
	Added   bool        `json:"added"`
	Labels  []labelJSON `json:"labels"`
	Effects effectJSON  `json:"effects"`
}

type effectJSON struct {
	Applied     bool          `json:"applied"`
	Entity      string        `json:"entity,omitempty"`
	TrustBefore *float64      `json:"trust_before,omitempty"`
	TrustAfter  *float64      `json:"trust_after,omitempty"`
	Blocked     []blockedJSON `json:"blocked,omitempty"`
}

type blockedJSON struct {
	List      string    `json:"list"`
	Value     string    `json:"value"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// postDecisionFeedback is POST /v1/decisions/{decision_id}/feedback.
func (s *Server) postDecisionFeedback(c echo.Context) error {
	body, err := s.decodeFeedback(c)
	if err != nil {
		return err
	}
	if body.TransactionID != "" {
		return engine.Invalid("transaction_id", "unknown_field", "the decision is named by the path; send transaction_id to POST /v1/feedback")
	}
	res, err := s.cfg.Feedback.Feedback(c.Request().Context(), c.Param("id"), engine.Label{Label: body.Label, Note: body.Note})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toFeedbackJSON(res, body.Label))
}

// postFeedback is POST /v1/feedback: the decision is named by the
// gateway's transaction id.
func (s *Server) postFeedback(c echo.Context) error {
	body, err := s.decodeFeedback(c)
	if err != nil {
		return err
	}
	res, err := s.cfg.Feedback.FeedbackByTransaction(c.Request().Context(), body.TransactionID, engine.Label{Label: body.Label, Note: body.Note})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toFeedbackJSON(res, body.Label))
}

func (s *Server) decodeFeedback(c echo.Context) (feedbackJSON, error) {
	raw, err := s.readBody(c)
	if err != nil {
		return feedbackJSON{}, err
	}
	var body feedbackJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return feedbackJSON{}, engine.InvalidJSON(err)
	}
	if dec.More() {
		return feedbackJSON{}, engine.Invalid("", "invalid_json", "the body must hold exactly one JSON object")
	}
	return body, nil
}

func toFeedbackJSON(res engine.FeedbackResult, label string) feedbackResultJSON {
	r := res.Record
	out := feedbackResultJSON{
		DecisionID: r.ID, TransactionID: r.TransactionID, Label: label, Added: res.Added,
		Labels: make([]labelJSON, len(r.Labels)),
	}
	for i, l := range r.Labels {
		out.Labels[i] = labelJSON{Label: l.Label, Note: l.Note, Source: l.Source, CreatedAt: l.CreatedAt.UTC()}
	}
	e := res.Effect
	out.Effects = effectJSON{Applied: e.Applied, Entity: e.Entity}
	if e.Entity != "" {
		out.Effects.TrustBefore, out.Effects.TrustAfter = &e.TrustBefore, &e.TrustAfter
	}
	for _, b := range e.Blocked {
		out.Effects.Blocked = append(out.Effects.Blocked, blockedJSON{List: b.List, Value: b.Value, ExpiresAt: b.ExpiresAt.UTC()})
	}
	return out
}
