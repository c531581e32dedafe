package review

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/riskengine/risk/engine"
)

// Policy opens review items for decisions no review rule asked about: every
// decision matching one of its rules gets an item.
type Policy struct {
	Rules []PolicyRule `json:"rules"`
}

// PolicyRule selects decisions. Empty fields do not filter; a rule with
// every field empty is refused (it would send every payment to review).
type PolicyRule struct {
	// Name identifies the rule in an item's why ("policy:<name>").
	Name string `json:"name"`
	// Queue is the queue of the items it opens; empty is DefaultQueue.
	Queue     string           `json:"queue,omitempty"`
	Outcomes  []engine.Outcome `json:"outcomes,omitempty"`
	Merchants []string         `json:"merchants,omitempty"`
	// MinAmount selects payments of at least this amount, in minor units
	// of Currency; with Currency set, payments in other currencies never
	// match (amounts are not converted).
	MinAmount int64  `json:"min_amount,omitempty"`
	Currency  string `json:"currency,omitempty"`
}

// Bounds on a policy.
const (
	MaxPolicyRules = 100
	maxNameLen     = 64
	maxMerchants   = 1000
)

var namePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.:-]*$`)

// validate checks p and returns a *engine.FieldError naming the field.
func (p *Policy) validate() error {
	if len(p.Rules) > MaxPolicyRules {
		return engine.Invalid("rules", "too_many", fmt.Sprintf("a policy holds at most %d rules", MaxPolicyRules))
	}
	seen := map[string]bool{}
	for i := range p.Rules {
		r := &p.Rules[i]
		at := func(f string) string { return fmt.Sprintf("rules[%d].%s", i, f) }
		switch {
		case !validName(r.Name):
			return engine.Invalid(at("name"), "invalid_name", fmt.Sprintf("name must be 1 to %d letters, digits, '_', '.', ':' or '-'", maxNameLen))
		case seen[r.Name]:
			return engine.Invalid(at("name"), "duplicate", fmt.Sprintf("rule %q appears twice", r.Name))
		case r.Queue != "" && !validName(r.Queue):
			return engine.Invalid(at("queue"), "invalid_queue", fmt.Sprintf("queue must be 1 to %d letters, digits, '_', '.', ':' or '-'", maxNameLen))
		case len(r.Merchants) > maxMerchants:
			return engine.Invalid(at("merchants"), "too_many", fmt.Sprintf("at most %d merchants", maxMerchants))
		case r.MinAmount < 0:
			return engine.Invalid(at("min_amount"), "invalid_amount", "min_amount must not be negative")
		case r.Currency != "" && !engine.IsCurrency(r.Currency):
			return engine.Invalid(at("currency"), "invalid_currency", "currency must be an ISO 4217 code such as EUR")
		case len(r.Outcomes) == 0 && len(r.Merchants) == 0 && r.MinAmount == 0 && r.Currency == "":
			return engine.Invalid(at("name"), "matches_everything", "a rule must select by outcome, merchant or amount")
		}
		for _, o := range r.Outcomes {
			if !o.Valid() {
				return engine.Invalid(at("outcomes"), "invalid_decision", "outcomes must be allow, challenge or deny")
			}
		}
		seen[r.Name] = true
	}
	return nil
}

func validName(s string) bool { return len(s) <= maxNameLen && namePattern.MatchString(s) }

// match returns the policy rules rec matches.
func (p *Policy) match(rec *engine.Record) []*PolicyRule {
	var out []*PolicyRule
	for i := range p.Rules {
		r := &p.Rules[i]
		pay := &rec.Payment
		if (len(r.Outcomes) == 0 || slices.Contains(r.Outcomes, rec.Outcome)) &&
			(len(r.Merchants) == 0 || slices.Contains(r.Merchants, pay.Merchant.ID)) &&
			(r.Currency == "" || r.Currency == pay.Currency) &&
			pay.Amount >= r.MinAmount {
			out = append(out, r)
		}
	}
	return out
}

// itemFor returns the item rec needs, and false when it needs none.
func (p *Policy) itemFor(rec *engine.Record) (Item, bool) {
	var why []string
	queue := ""
	if rec.ReviewRequested() {
		for i := range rec.Rules {
			x := &rec.Rules[i]
			if x.Action == engine.ActionReview && x.Matched && x.Mode == engine.ModeActive && x.Error == "" {
				why = append(why, "rule:"+x.ID)
			}
		}
	}
	for _, r := range p.match(rec) {
		why = append(why, "policy:"+r.Name)
		if queue == "" && r.Queue != "" {
			queue = r.Queue
		}
	}
	if len(why) == 0 {
		return Item{}, false
	}
	if queue == "" {
		queue = DefaultQueue
	}
	return Item{
		ID: ItemID(rec.ID), DecisionID: rec.ID, TransactionID: rec.TransactionID, Queue: queue, Why: why,
		Outcome: rec.Outcome, Amount: rec.Payment.Amount, Currency: rec.Payment.Currency,
		OpenedAt: rec.EvaluatedAt.UTC(), Status: StatusOpen,
	}, true
}
