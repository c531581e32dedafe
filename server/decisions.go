package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

// postDecision is POST /v1/decisions.
func (s *Server) postDecision(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	p, err := engine.DecodePayment(body)
	if err != nil {
		return err
	}
	rec, replayed, err := s.cfg.Engine.Decide(c.Request().Context(), p, body)
	if err != nil {
		return err
	}
	if replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	}
	out := toDecisionJSON(rec, replayed)
	bp := responseBufs.Get().(*[]byte)
	b, ok := out.appendJSON((*bp)[:0])
	defer func() {
		if cap(b) <= maxPooledResponse {
			*bp = b[:0]
			responseBufs.Put(bp)
		}
	}()
	if !ok {
		return c.JSON(http.StatusOK, out)
	}
	// c.Blob has copied b into the response's buffer when it returns.
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
}

// readBody reads the whole body, refusing more than MaxBodyBytes.
func (s *Server) readBody(c echo.Context) ([]byte, error) {
	r := http.MaxBytesReader(c.Response(), c.Request().Body, s.cfg.MaxBodyBytes)
	body, err := io.ReadAll(r)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, engine.Invalid("", "body_too_large", "the body is larger than "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes")
	}
	if err != nil {
		return nil, engine.Invalid("", "unreadable_body", "the body could not be read")
	}
	return body, nil
}

// getDecision is GET /v1/decisions/{id}: the full explanation.
func (s *Server) getDecision(c echo.Context) error {
	rec, err := s.cfg.Decisions.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toExplanationJSON(rec))
}

// searchDecisions is GET /v1/decisions: newest first, paged.
func (s *Server) searchDecisions(c echo.Context) error {
	q := engine.Query{
		TransactionID:   c.QueryParam("transaction_id"),
		AccountID:       c.QueryParam("account_id"),
		CardFingerprint: c.QueryParam("card_fingerprint"),
		Outcome:         engine.Outcome(c.QueryParam("decision")),
		Cursor:          c.QueryParam("cursor"),
	}
	if q.Outcome != "" && !q.Outcome.Valid() {
		return engine.Invalid("decision", "invalid_decision", "decision must be allow, challenge or deny")
	}
	var err error
	if q.From, err = queryTime(c, "from"); err != nil {
		return err
	}
	if q.To, err = queryTime(c, "to"); err != nil {
		return err
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return engine.Invalid("from", "invalid_range", "from must be before to")
	}
	if v := c.QueryParam("limit"); v != "" {
		if q.Limit, err = strconv.Atoi(v); err != nil || q.Limit < 1 || q.Limit > 500 {
			return engine.Invalid("limit", "invalid_limit", "limit must be between 1 and 500")
		}
	}
	recs, next, err := s.cfg.Decisions.Search(c.Request().Context(), q)
	if err != nil {
		return err
	}
	out := searchJSON{Decisions: make([]decisionJSON, len(recs)), NextCursor: next}
	for i, r := range recs {
		out.Decisions[i] = toDecisionJSON(r, false)
	}
	return c.JSON(http.StatusOK, out)
}

func queryTime(c echo.Context, name string) (time.Time, error) {
	return engine.ParseTime(name, c.QueryParam(name))
}

type searchJSON struct {
	Decisions  []decisionJSON `json:"decisions"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// decisionJSON is the response of POST /v1/decisions.
type decisionJSON struct {
	DecisionID     string       `json:"decision_id"`
	TransactionID  string       `json:"transaction_id"`
	Decision       string       `json:"decision"`
	Score          int          `json:"score"`
	Reasons        []reasonJSON `json:"reasons"`
	Limits         limitsJSON   `json:"limits"`
	RulesetVersion int64        `json:"ruleset_version"`
	Degraded       bool         `json:"degraded"`
	DegradedCause  string       `json:"degraded_cause,omitempty"`
	EvaluatedAt    time.Time    `json:"evaluated_at"`
	Replayed       bool         `json:"replayed,omitempty"`
	// Review is true when a review rule asked for a person to look.
	Review bool `json:"review,omitempty"`
}

type reasonJSON struct {
	Rule    string `json:"rule"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type limitsJSON struct {
	Entity         string        `json:"entity,omitempty"`
	Currency       string        `json:"currency,omitempty"`
	SingleMax      *int64        `json:"single_max,omitempty"`
	DailyMax       *int64        `json:"daily_max,omitempty"`
	DailyRemaining *int64        `json:"daily_remaining,omitempty"`
	DailySpent     *int64        `json:"daily_spent,omitempty"`
	Trust          *float64      `json:"trust,omitempty"`
	Policy         string        `json:"policy,omitempty"`
	Segment        string        `json:"segment,omitempty"`
	BaseSingleMax  *int64        `json:"base_single_max,omitempty"`
	BaseDailyMax   *int64        `json:"base_daily_max,omitempty"`
	BaseCurrency   string        `json:"base_currency,omitempty"`
	Rate           *float64      `json:"rate,omitempty"`
	Adjustments    []string      `json:"adjustments,omitempty"`
	Override       *overrideJSON `json:"override,omitempty"`
}

type overrideJSON struct {
	SingleMax int64     `json:"single_max"`
	DailyMax  int64     `json:"daily_max"`
	Reason    string    `json:"reason"`
	Author    string    `json:"author,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

func toDecisionJSON(r *engine.Record, replayed bool) decisionJSON {
	out := decisionJSON{
		DecisionID: r.ID, TransactionID: r.TransactionID, Decision: string(r.Outcome), Score: r.Score,
		Reasons: make([]reasonJSON, len(r.Reasons)), Limits: toLimitsJSON(r.Limits),
		RulesetVersion: r.RulesetVersion, Degraded: r.Degraded, DegradedCause: string(r.DegradedCause),
		EvaluatedAt: r.EvaluatedAt.UTC(), Replayed: replayed, Review: r.ReviewRequested(),
	}
	for i, x := range r.Reasons {
		out.Reasons[i] = reasonJSON{Rule: x.Rule, Code: x.Code, Message: x.Message}
	}
	return out
}

func toLimitsJSON(l engine.Limits) limitsJSON {
	if l.Entity == "" {
		return limitsJSON{}
	}
	out := limitsJSON{
		Entity: l.Entity, Currency: l.Currency, SingleMax: &l.SingleMax, DailyMax: &l.DailyMax,
		DailyRemaining: &l.DailyRemaining, DailySpent: &l.DailySpent, Trust: &l.Trust,
		Policy: l.Policy, Segment: l.Segment, Adjustments: l.Adjustments,
	}
	if l.BaseCurrency != "" {
		out.BaseSingleMax, out.BaseDailyMax, out.BaseCurrency, out.Rate = &l.BaseSingleMax, &l.BaseDailyMax, l.BaseCurrency, &l.Rate
	}
	if o := l.Override; o != nil {
		out.Override = &overrideJSON{SingleMax: o.SingleMax, DailyMax: o.DailyMax, Reason: o.Reason, Author: o.Author, ExpiresAt: o.ExpiresAt}
	}
	return out
}

// explanationJSON is GET /v1/decisions/{id}: everything that produced the
// decision.
type explanationJSON struct {
	decisionJSON
	Request      json.RawMessage  `json:"request"`
	Payment      paymentOutJSON   `json:"payment"`
	Features     []featureJSON    `json:"features"`
	Rules        []ruleResultJSON `json:"rules"`
	Thresholds   thresholdsJSON   `json:"thresholds"`
	DeterminedBy string           `json:"determined_by"`
	Labels       []labelJSON      `json:"labels"`
}

type paymentOutJSON struct {
	TransactionID string         `json:"transaction_id"`
	OccurredAt    time.Time      `json:"occurred_at"`
	Amount        int64          `json:"amount"`
	Currency      string         `json:"currency"`
	Account       accountJSON    `json:"account"`
	Card          cardJSON       `json:"card"`
	Device        deviceJSON     `json:"device"`
	Merchant      merchantJSON   `json:"merchant"`
	Attributes    map[string]any `json:"attributes,omitempty"`
}

type featureJSON struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Ready bool    `json:"ready"`
}

type ruleResultJSON struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Version int    `json:"version"`
	Mode    string `json:"mode"`
	Action  string `json:"action"`
	Score   int    `json:"score"`
	Matched bool   `json:"matched"`
	Error   string `json:"error,omitempty"`
}

type thresholdsJSON struct {
	Challenge int `json:"challenge"`
	Deny      int `json:"deny"`
}

type labelJSON struct {
	Label     string    `json:"label"`
	Note      string    `json:"note,omitempty"`
	Source    string    `json:"source,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func toExplanationJSON(r *engine.Record) explanationJSON {
	p := &r.Payment
	out := explanationJSON{
		decisionJSON: toDecisionJSON(r, false),
		Payment: paymentOutJSON{
			TransactionID: p.TransactionID, OccurredAt: p.OccurredAt.UTC(), Amount: p.Amount, Currency: p.Currency,
			Account:    accountJSON{ID: p.Account.ID, Email: p.Account.Email, Country: p.Account.Country},
			Card:       cardJSON{Fingerprint: p.Card.Fingerprint, BIN: p.Card.BIN, Country: p.Card.Country},
			Device:     deviceJSON{ID: p.Device.ID, IP: p.Device.IP, IPCountry: p.Device.IPCountry},
			Merchant:   merchantJSON{ID: p.Merchant.ID, MCC: p.Merchant.MCC, Country: p.Merchant.Country},
			Attributes: p.Attributes,
		},
		Features:     make([]featureJSON, len(r.Features)),
		Rules:        make([]ruleResultJSON, len(r.Rules)),
		Thresholds:   thresholdsJSON{Challenge: r.Thresholds.Challenge, Deny: r.Thresholds.Deny},
		DeterminedBy: r.DeterminedBy,
		Labels:       make([]labelJSON, len(r.Labels)),
	}
	if !p.Account.CreatedAt.IsZero() {
		out.Payment.Account.CreatedAt = p.Account.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	if json.Valid(r.Request) {
		out.Request = r.Request
	} else {
		out.Request = json.RawMessage("null")
	}
	for i, f := range r.Features {
		out.Features[i] = featureJSON{Name: f.Name, Value: f.Value, Ready: f.Ready}
	}
	for i, x := range r.Rules {
		out.Rules[i] = ruleResultJSON{
			ID: x.ID, Name: x.Name, Version: x.Version, Mode: string(x.Mode), Action: string(x.Action),
			Score: x.Score, Matched: x.Matched, Error: x.Error,
		}
	}
	for i, l := range r.Labels {
		out.Labels[i] = labelJSON{Label: l.Label, Note: l.Note, Source: l.Source, CreatedAt: l.CreatedAt.UTC()}
	}
	return out
}
