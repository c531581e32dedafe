package engine

import (
	"time"
)

// Outcome is the engine's answer to the gateway.
type Outcome string

// The three outcomes, from most to least permissive.
const (
	Allow     Outcome = "allow"
	Challenge Outcome = "challenge"
	Deny      Outcome = "deny"
)

// Valid reports whether o is one of the three outcomes.
func (o Outcome) Valid() bool { return o == Allow || o == Challenge || o == Deny }

// Action is what a matched rule asks for. ActionScore only adds the rule's
// score; ActionReview leaves the outcome to the other rules and asks for a
// person to look (Record.ReviewRequested); the others decide the outcome
// outright (see Combine).
type Action string

// Rule actions.
const (
	ActionAllow     Action = "allow"
	ActionChallenge Action = "challenge"
	ActionDeny      Action = "deny"
	ActionScore     Action = "score"
	ActionReview    Action = "review"
)

// Mode says whether a rule takes part in the outcome.
type Mode string

// Rule modes. A shadow rule is evaluated and recorded but never changes the
// outcome; a disabled rule is not evaluated.
const (
	ModeActive   Mode = "active"
	ModeShadow   Mode = "shadow"
	ModeDisabled Mode = "disabled"
)

// Thresholds turn a summed score into an outcome: a score at or above Deny
// denies, at or above Challenge challenges. A zero threshold is disabled.
type Thresholds struct {
	Challenge int
	Deny      int
}

// RuleInfo is what a rule set says of one of its rules: the part of a
// RuleResult that is the same for every payment. The results of one rule
// share one RuleInfo, so it must not be modified.
type RuleInfo struct {
	ID      string
	Name    string
	Version int
	Mode    Mode
	Action  Action
	Score   int
	Reason  string
	Message string
}

// RuleResult is what one rule did for one payment. Its RuleInfo is never
// nil. Pointing at the rule instead of copying it keeps a result at a
// quarter of the size: a decision makes one per rule.
type RuleResult struct {
	*RuleInfo
	Matched bool
	// Error is set when the rule failed at run time; it then counts as not
	// matched.
	Error string
}

// Reason is one cause of an outcome, safe to show the customer.
type Reason struct {
	Rule    string
	Code    string
	Message string
}

// Decision is the answer for one payment.
type Decision struct {
	ID             string
	TransactionID  string
	Outcome        Outcome
	Score          int
	Reasons        []Reason
	Limits         Limits
	RulesetVersion int64
	// Degraded is true when the engine decided without everything it
	// normally uses; DegradedCause says why, as a stable code (the first
	// cause when there were several).
	Degraded      bool
	DegradedCause Cause
	EvaluatedAt   time.Time
}

// Label is a later outcome report on a decision.
type Label struct {
	Label     string
	Note      string
	Source    string
	CreatedAt time.Time
}

// Labels the gateway and analysts may attach to a decision.
const (
	LabelChallengePassed = "challenge_passed"
	LabelChallengeFailed = "challenge_failed"
	LabelLegit           = "legit"
	LabelFraud           = "fraud"
	LabelChargeback      = "chargeback"
)

// ValidLabel reports whether l is a known feedback label.
func ValidLabel(l string) bool {
	switch l {
	case LabelChallengePassed, LabelChallengeFailed, LabelLegit, LabelFraud, LabelChargeback:
		return true
	}
	return false
}

// Record is everything known about one decision: the answer, the input as
// received, the feature values and rule results that produced it, and the
// labels attached later. It is what the explanation endpoint shows and what
// backtests replay.
type Record struct {
	Decision
	// Seq orders records in the order they were committed; it is assigned
	// by the DecisionStore.
	Seq     uint64
	Payment Payment
	// Request is the request body as received.
	Request []byte
	// RequestHash identifies the request content for idempotency checks.
	RequestHash string
	Features    []FeatureValue
	Rules       []RuleResult
	Thresholds  Thresholds
	// DeterminedBy names what produced the outcome: "rule:<id>",
	// "threshold:deny", "threshold:challenge", "default" or "fallback".
	DeterminedBy string
	Labels       []Label
}

// HasLabel reports whether r carries label l.
func (r *Record) HasLabel(l string) bool {
	for _, x := range r.Labels {
		if x.Label == l {
			return true
		}
	}
	return false
}

// ReviewRequested reports whether a matched active review rule asked for a
// person to look at this decision. It is derived from the rule results, so
// stored records need no field of their own; shadow and errored rules
// never ask.
func (r *Record) ReviewRequested() bool {
	for i := range r.Rules {
		x := &r.Rules[i]
		if x.Action == ActionReview && x.Matched && x.Mode == ModeActive && x.Error == "" {
			return true
		}
	}
	return false
}

// FeatureValue is one behavioural feature as the rules saw it.
type FeatureValue struct {
	Name  string
	Value float64
	// Ready is false while the feature is still being backfilled; its value
	// then covers only part of the window.
	Ready bool
}

// Combine turns rule results and thresholds into an outcome, the summed score
// of matched active rules, the reasons and what determined it.
//
// Precedence: a matched active allow rule allows (allow lists win); else a
// matched active deny rule denies; else a matched active challenge rule
// challenges; else the score decides against the thresholds. Shadow and
// errored rules never change the outcome.
func Combine(results []RuleResult, th Thresholds) (o Outcome, score int, reasons []Reason, by string) {
	var first [4]int // index+1 of the first matched rule per action
	for i := range results {
		r := &results[i]
		if !r.Matched || r.Mode != ModeActive || r.Error != "" {
			continue
		}
		score += r.Score
		switch r.Action {
		case ActionAllow:
			if first[0] == 0 {
				first[0] = i + 1
			}
		case ActionDeny:
			if first[1] == 0 {
				first[1] = i + 1
			}
		case ActionChallenge:
			if first[2] == 0 {
				first[2] = i + 1
			}
		}
	}
	for slot, outcome := range [3]Outcome{Allow, Deny, Challenge} {
		if first[slot] == 0 {
			continue
		}
		action := Action(outcome)
		for i := range results {
			r := &results[i]
			if r.Matched && r.Mode == ModeActive && r.Error == "" && r.Action == action {
				reasons = append(reasons, reasonOf(r))
			}
		}
		return outcome, score, reasons, "rule:" + results[first[slot]-1].ID
	}
	switch {
	case th.Deny > 0 && score >= th.Deny:
		o, by = Deny, "threshold:deny"
	case th.Challenge > 0 && score >= th.Challenge:
		o, by = Challenge, "threshold:challenge"
	default:
		return Allow, score, nil, "default"
	}
	for i := range results {
		r := &results[i]
		if r.Matched && r.Mode == ModeActive && r.Error == "" && r.Action == ActionScore && r.Score > 0 {
			reasons = append(reasons, reasonOf(r))
		}
	}
	return o, score, reasons, by
}

func reasonOf(r *RuleResult) Reason {
	code := r.Reason
	if code == "" {
		code = r.ID
	}
	return Reason{Rule: r.ID, Code: code, Message: r.Message}
}
