package backtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/rules"
)

// Candidate names the rule set a backtest replays history through: exactly
// one of the current draft, a published version, or an inline spec.
type Candidate struct {
	Draft   bool
	Version int64
	Spec    *rules.Spec
}

// Request is one backtest: a candidate and the stored decisions to replay.
type Request struct {
	Candidate Candidate
	// From is inclusive and To exclusive, on the decisions' evaluation
	// time. Both are required and From must be before To.
	From, To time.Time
	// MerchantID, when set, keeps only that merchant's decisions.
	MerchantID string
	// Decision, when set, keeps only decisions whose stored outcome it is.
	Decision engine.Outcome
}

// Validate checks r and returns a *engine.FieldError naming the field at
// fault.
func (r *Request) Validate() error {
	c := r.Candidate
	n := 0
	if c.Draft {
		n++
	}
	if c.Version != 0 {
		n++
	}
	if c.Spec != nil {
		n++
	}
	switch {
	case n != 1:
		return engine.Invalid("candidate", "invalid_candidate", `candidate must be exactly one of {"draft": true}, {"version": n} or {"rules": {...}}`)
	case c.Version < 0:
		return engine.Invalid("candidate.version", "invalid_version", "version must be a positive number")
	case r.From.IsZero():
		return engine.Invalid("from", "required", "from is required")
	case r.To.IsZero():
		return engine.Invalid("to", "required", "to is required")
	case !r.From.Before(r.To):
		return engine.Invalid("from", "invalid_range", "from must be before to")
	case r.Decision != "" && !r.Decision.Valid():
		return engine.Invalid("decision", "invalid_decision", "decision must be allow, challenge or deny")
	case len(r.MerchantID) > engine.MaxStringLen:
		return engine.Invalid("merchant_id", "too_long", fmt.Sprintf("merchant_id is longer than %d characters", engine.MaxStringLen))
	}
	return nil
}

// matches reports whether a stored decision is one the request replays.
func (r *Request) matches(rec *engine.Record) bool {
	return !rec.EvaluatedAt.Before(r.From) && rec.EvaluatedAt.Before(r.To) &&
		(r.MerchantID == "" || rec.Payment.Merchant.ID == r.MerchantID) &&
		(r.Decision == "" || rec.Outcome == r.Decision)
}

// requestJSON is the body of POST /admin/backtests.
type requestJSON struct {
	Candidate  *candidateJSON `json:"candidate"`
	From       string         `json:"from"`
	To         string         `json:"to"`
	MerchantID string         `json:"merchant_id"`
	Decision   string         `json:"decision"`
}

type candidateJSON struct {
	Draft   bool        `json:"draft"`
	Version *int64      `json:"version"`
	Rules   *rules.Spec `json:"rules"`
}

// decodeRequest parses and validates a POST /admin/backtests body.
func decodeRequest(body []byte) (Request, error) {
	var w requestJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Request{}, engine.InvalidJSON(err)
	}
	if dec.More() {
		return Request{}, engine.Invalid("", "invalid_json", "the body must hold exactly one JSON object")
	}
	if w.Candidate == nil {
		return Request{}, engine.Invalid("candidate", "required", "candidate is required")
	}
	r := Request{
		Candidate:  Candidate{Draft: w.Candidate.Draft, Spec: w.Candidate.Rules},
		MerchantID: w.MerchantID,
		Decision:   engine.Outcome(w.Decision),
	}
	if v := w.Candidate.Version; v != nil {
		if *v <= 0 {
			return Request{}, engine.Invalid("candidate.version", "invalid_version", "version must be a positive number")
		}
		r.Candidate.Version = *v
	}
	var err error
	if r.From, err = engine.ParseTime("from", w.From); err != nil {
		return Request{}, err
	}
	if r.To, err = engine.ParseTime("to", w.To); err != nil {
		return Request{}, err
	}
	return r, r.Validate()
}
