package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Outcome is a decision: allow, challenge or deny.
type Outcome string

// Outcomes.
const (
	Allow     Outcome = "allow"
	Challenge Outcome = "challenge"
	Deny      Outcome = "deny"
)

// Payment is the body of POST /v1/decisions. Amount is in minor units
// (cents: 12999 is 129.99 USD). Cards are named by the gateway's
// fingerprint or token: a card number anywhere is refused.
type Payment struct {
	TransactionID string         `json:"transaction_id"`
	Amount        int64          `json:"amount"`
	Currency      string         `json:"currency"`
	OccurredAt    time.Time      `json:"occurred_at,omitzero"`
	Account       *Account       `json:"account,omitempty"`
	Card          *Card          `json:"card,omitempty"`
	Device        *Device        `json:"device,omitempty"`
	Merchant      *Merchant      `json:"merchant,omitempty"`
	Attributes    map[string]any `json:"attributes,omitempty"`
}

// Account is the paying customer's account.
type Account struct {
	ID        string    `json:"id,omitempty"`
	Email     string    `json:"email,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	Country   string    `json:"country,omitempty"`
}

// Card is the card, by fingerprint: never its number.
type Card struct {
	Fingerprint string `json:"fingerprint,omitempty"`
	BIN         string `json:"bin,omitempty"`
	Country     string `json:"country,omitempty"`
}

// Device is the customer's device and network.
type Device struct {
	ID        string `json:"id,omitempty"`
	IP        string `json:"ip,omitempty"`
	IPCountry string `json:"ip_country,omitempty"`
}

// Merchant is who is paid.
type Merchant struct {
	ID      string `json:"id,omitempty"`
	MCC     string `json:"mcc,omitempty"`
	Country string `json:"country,omitempty"`
}

// Decision is the engine's answer to a payment.
type Decision struct {
	DecisionID    string `json:"decision_id"`
	TransactionID string `json:"transaction_id"`
	// Outcome is the decision: allow, challenge or deny.
	Outcome        Outcome   `json:"decision"`
	Score          int       `json:"score"`
	Reasons        []Reason  `json:"reasons"`
	Limits         Limits    `json:"limits"`
	RulesetVersion int64     `json:"ruleset_version"`
	Degraded       bool      `json:"degraded"`
	DegradedCause  string    `json:"degraded_cause,omitempty"`
	EvaluatedAt    time.Time `json:"evaluated_at"`
	// Replayed is true when this is the stored answer to an earlier
	// request with the same transaction id.
	Replayed bool `json:"replayed,omitempty"`
	// Review is true when a review rule asked a person to look.
	Review bool `json:"review,omitempty"`
	// Fallback is true when the engine did not answer and
	// Config.Fallback decided; DecisionID is then empty.
	Fallback bool `json:"-"`
}

// Reason is a rule that determined the outcome. Message is safe to show
// the customer; Code is stable for your own handling.
type Reason struct {
	Rule    string `json:"rule"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Limits are the customer's dynamic limits, in minor units of Currency;
// zero when no limits apply.
type Limits struct {
	Entity         string   `json:"entity,omitempty"`
	Currency       string   `json:"currency,omitempty"`
	SingleMax      int64    `json:"single_max,omitempty"`
	DailyMax       int64    `json:"daily_max,omitempty"`
	DailyRemaining int64    `json:"daily_remaining,omitempty"`
	DailySpent     int64    `json:"daily_spent,omitempty"`
	Trust          float64  `json:"trust,omitempty"`
	Policy         string   `json:"policy,omitempty"`
	Segment        string   `json:"segment,omitempty"`
	Adjustments    []string `json:"adjustments,omitempty"`
}

// Decide screens p. A retry reuses p's transaction id, so the engine
// answers it once. With no answer in time, Config.Fallback decides (the
// result has Fallback true); without a fallback the error wraps
// ErrTimeout or is an *Error.
func (c *Client) Decide(ctx context.Context, p Payment) (Decision, error) {
	var d Decision
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/decisions", body: p, retry: true, timeout: c.cfg.DecideTimeout}, &d)
	if err == nil {
		return d, nil
	}
	if c.cfg.Fallback == nil || !noAnswer(err) {
		return Decision{}, err
	}
	fd, ferr := c.cfg.Fallback(ctx, p, err)
	if ferr != nil {
		return Decision{}, errors.Join(err, ferr)
	}
	fd.Fallback = true
	return fd, nil
}

// Explanation is GET /v1/decisions/{id}: the decision and everything that
// produced it.
type Explanation struct {
	Decision
	// Request is the body as the gateway sent it.
	Request      json.RawMessage `json:"request"`
	Payment      json.RawMessage `json:"payment"`
	Features     []Feature       `json:"features"`
	Rules        []RuleResult    `json:"rules"`
	DeterminedBy string          `json:"determined_by"`
	Labels       []Label         `json:"labels"`
}

// Feature is a feature value a decision saw.
type Feature struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Ready bool    `json:"ready"`
}

// RuleResult is what one rule returned.
type RuleResult struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Version int    `json:"version"`
	Mode    string `json:"mode"`
	Action  string `json:"action"`
	Score   int    `json:"score"`
	Matched bool   `json:"matched"`
	Error   string `json:"error,omitempty"`
}

// Label is feedback on a decision.
type Label struct {
	Label     string    `json:"label"`
	Note      string    `json:"note,omitempty"`
	Source    string    `json:"source,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Explain returns the explanation of a decision.
func (c *Client) Explain(ctx context.Context, decisionID string) (Explanation, error) {
	var e Explanation
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/decisions/" + pathEscape(decisionID), retry: true, timeout: c.cfg.Timeout}, &e)
	return e, err
}

// Query selects decisions; zero fields do not filter.
type Query struct {
	TransactionID   string
	AccountID       string
	CardFingerprint string
	Decision        Outcome
	From, To        time.Time
	// Limit is the page size (1 to 500); zero is the server's default.
	Limit int
	// Cursor is NextCursor of the previous page.
	Cursor string
}

// Page is a page of decisions, newest first.
type Page struct {
	Decisions []Decision `json:"decisions"`
	// NextCursor continues; empty on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// Search returns a page of decisions.
func (c *Client) Search(ctx context.Context, q Query) (Page, error) {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("transaction_id", q.TransactionID)
	set("account_id", q.AccountID)
	set("card_fingerprint", q.CardFingerprint)
	set("decision", string(q.Decision))
	set("cursor", q.Cursor)
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var p Page
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/decisions", query: v, retry: true, timeout: c.cfg.Timeout}, &p)
	return p, err
}

// FeedbackResult is what a label changed.
type FeedbackResult struct {
	DecisionID    string  `json:"decision_id"`
	TransactionID string  `json:"transaction_id"`
	Label         string  `json:"label"`
	Added         bool    `json:"added"`
	Labels        []Label `json:"labels"`
	Effects       struct {
		Applied     bool     `json:"applied"`
		Entity      string   `json:"entity,omitempty"`
		TrustBefore *float64 `json:"trust_before,omitempty"`
		TrustAfter  *float64 `json:"trust_after,omitempty"`
	} `json:"effects"`
}

// Feedback labels a decision (challenge_passed, challenge_failed,
// chargeback, fraud, legit, …). Labelling twice changes nothing, so it is
// retried.
func (c *Client) Feedback(ctx context.Context, decisionID, label, note string) (FeedbackResult, error) {
	var r FeedbackResult
	body := map[string]string{"label": label}
	if note != "" {
		body["note"] = note
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/decisions/" + pathEscape(decisionID) + "/feedback", body: body, retry: true, timeout: c.cfg.Timeout}, &r)
	return r, err
}

// FeedbackByTransaction labels the decision of the gateway's transaction
// id.
func (c *Client) FeedbackByTransaction(ctx context.Context, transactionID, label, note string) (FeedbackResult, error) {
	var r FeedbackResult
	body := map[string]string{"transaction_id": transactionID, "label": label}
	if note != "" {
		body["note"] = note
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/feedback", body: body, retry: true, timeout: c.cfg.Timeout}, &r)
	return r, err
}
