package review

import (
	"time"

	"github.com/riskengine/risk/engine"
)

// explanationJSON is a decision as a reviewer sees it: what was paid, what
// the features were, which rules matched and what decided.
type explanationJSON struct {
	DecisionID     string         `json:"decision_id"`
	TransactionID  string         `json:"transaction_id"`
	Decision       engine.Outcome `json:"decision"`
	Score          int            `json:"score"`
	Review         bool           `json:"review"`
	Reasons        []reasonJSON   `json:"reasons"`
	DeterminedBy   string         `json:"determined_by"`
	RulesetVersion int64          `json:"ruleset_version"`
	Degraded       bool           `json:"degraded"`
	DegradedCause  string         `json:"degraded_cause,omitempty"`
	EvaluatedAt    time.Time      `json:"evaluated_at"`
	Payment        paymentJSON    `json:"payment"`
	Features       []featureJSON  `json:"features"`
	Rules          []ruleJSON     `json:"rules"`
	Labels         []engine.Label `json:"labels"`
	Limits         *limitsSummary `json:"limits,omitempty"`
}

type reasonJSON struct {
	Rule    string `json:"rule"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type paymentJSON struct {
	Amount     int64          `json:"amount"`
	Currency   string         `json:"currency"`
	OccurredAt time.Time      `json:"occurred_at"`
	Account    map[string]any `json:"account"`
	Card       map[string]any `json:"card"`
	Device     map[string]any `json:"device"`
	Merchant   map[string]any `json:"merchant"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

type featureJSON struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Ready bool    `json:"ready"`
}

type ruleJSON struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Mode    string `json:"mode"`
	Action  string `json:"action"`
	Score   int    `json:"score"`
	Matched bool   `json:"matched"`
	Error   string `json:"error,omitempty"`
}

type limitsSummary struct {
	Entity         string  `json:"entity"`
	Currency       string  `json:"currency"`
	SingleMax      int64   `json:"single_max"`
	DailyMax       int64   `json:"daily_max"`
	DailyRemaining int64   `json:"daily_remaining"`
	Trust          float64 `json:"trust"`
}

func toExplanation(r *engine.Record) explanationJSON {
	p := &r.Payment
	out := explanationJSON{
		DecisionID: r.ID, TransactionID: r.TransactionID, Decision: r.Outcome, Score: r.Score, Review: r.ReviewRequested(),
		Reasons: make([]reasonJSON, len(r.Reasons)), DeterminedBy: r.DeterminedBy, RulesetVersion: r.RulesetVersion,
		Degraded: r.Degraded, DegradedCause: string(r.DegradedCause), EvaluatedAt: r.EvaluatedAt.UTC(),
		Payment: paymentJSON{
			Amount: p.Amount, Currency: p.Currency, OccurredAt: p.OccurredAt.UTC(),
			Account:    map[string]any{"id": p.Account.ID, "email": p.Account.Email, "country": p.Account.Country},
			Card:       map[string]any{"fingerprint": p.Card.Fingerprint, "bin": p.Card.BIN, "country": p.Card.Country},
			Device:     map[string]any{"id": p.Device.ID, "ip": p.Device.IP, "ip_country": p.Device.IPCountry},
			Merchant:   map[string]any{"id": p.Merchant.ID, "mcc": p.Merchant.MCC, "country": p.Merchant.Country},
			Attributes: p.Attributes,
		},
		Features: make([]featureJSON, len(r.Features)), Rules: make([]ruleJSON, len(r.Rules)), Labels: r.Labels,
	}
	if out.Labels == nil {
		out.Labels = []engine.Label{}
	}
	for i, x := range r.Reasons {
		out.Reasons[i] = reasonJSON{Rule: x.Rule, Code: x.Code, Message: x.Message}
	}
	for i, f := range r.Features {
		out.Features[i] = featureJSON{Name: f.Name, Value: f.Value, Ready: f.Ready}
	}
	for i, x := range r.Rules {
		out.Rules[i] = ruleJSON{ID: x.ID, Name: x.Name, Mode: string(x.Mode), Action: string(x.Action), Score: x.Score, Matched: x.Matched, Error: x.Error}
	}
	if l := r.Limits; l.Entity != "" {
		out.Limits = &limitsSummary{Entity: l.Entity, Currency: l.Currency, SingleMax: l.SingleMax, DailyMax: l.DailyMax, DailyRemaining: l.DailyRemaining, Trust: l.Trust}
	}
	return out
}
