package engine

import (
	"context"
	"errors"
)

// Cause says why a decision was degraded, as a stable machine code. It is
// what a gateway receives in degraded_cause and what the metrics count by;
// the error behind it is logged, never sent. The zero Cause means the
// decision was not degraded.
type Cause string

// The degraded causes. New codes may be added; existing ones never change
// meaning, since gateways branch on them.
const (
	// CauseDeadline: features or limits were not gathered within the
	// decision budget (Config.Budget).
	CauseDeadline Cause = "deadline"
	// CauseRulesDeadline: the rules did not finish within their budget.
	CauseRulesDeadline Cause = "rules_deadline"
	// CauseFeatureStoreUnavailable: the feature source failed.
	CauseFeatureStoreUnavailable Cause = "feature_store_unavailable"
	// CauseStateCorrupt: stored state of an entity of the payment (feature
	// windows, trust) could not be decoded; the payment was screened
	// without it, and the state is left as it is for an operator.
	CauseStateCorrupt Cause = "state_corrupt"
	// CauseLimitsUnavailable: the limiter failed.
	CauseLimitsUnavailable Cause = "limits_unavailable"
	// CauseNoRules: no rule set was loaded.
	CauseNoRules Cause = "no_rules"
	// CauseDecisionStoreUnavailable: the decision could not be recorded;
	// a retry is decided afresh.
	CauseDecisionStoreUnavailable Cause = "decision_store_unavailable"
	// CauseInternal: the evaluation panicked (a bug); the stack is logged.
	CauseInternal Cause = "internal_error"
	// CauseOther: a cause recorded by an older release that maps to none
	// of the above.
	CauseOther Cause = "other"
)

// Causes lists every Cause, for metrics that export each from the start.
func Causes() []Cause {
	return []Cause{CauseDeadline, CauseRulesDeadline, CauseFeatureStoreUnavailable, CauseStateCorrupt,
		CauseLimitsUnavailable, CauseNoRules, CauseDecisionStoreUnavailable, CauseInternal, CauseOther}
}

// Valid reports whether c is one of Causes.
func (c Cause) Valid() bool {
	for _, k := range Causes() {
		if c == k {
			return true
		}
	}
	return false
}

// ErrCorrupt marks stored state that exists but cannot be decoded. It is
// never replaced by an empty value: the reader reports it, and a decision
// that needed the state is degraded with CauseStateCorrupt.
var ErrCorrupt = errors.New("stored state corrupt")

// featureCause classifies an error of the feature source.
func featureCause(err error) Cause {
	switch {
	case errors.Is(err, ErrCorrupt):
		return CauseStateCorrupt
	case errors.Is(err, context.DeadlineExceeded):
		return CauseDeadline
	}
	return CauseFeatureStoreUnavailable
}

// limitsCause classifies an error of the limiter.
func limitsCause(err error) Cause {
	switch {
	case errors.Is(err, ErrCorrupt):
		return CauseStateCorrupt
	case errors.Is(err, context.DeadlineExceeded):
		return CauseDeadline
	}
	return CauseLimitsUnavailable
}
