package engine

import (
	"context"
	"fmt"
	"time"
)

// RuleSet is a compiled, immutable set of rules. It is safe for concurrent
// use; the engine swaps a live set whole and never mutates it.
type RuleSet interface {
	// Version is the published version number, 0 for an unversioned set.
	Version() int64
	// Thresholds are the score thresholds of this set.
	Thresholds() Thresholds
	// Evaluate runs every non-disabled rule against in and appends one
	// result per rule to dst. A rule that fails is reported in its result,
	// never as a panic. When ctx is done the remaining rules are reported
	// as errored.
	Evaluate(ctx context.Context, in *Input, dst []RuleResult) []RuleResult
}

// Input is what rules see for one payment.
type Input struct {
	Payment  *Payment
	Features []FeatureValue
	Limits   *Limits
	// Now is the evaluation time.
	Now time.Time
}

// FeatureSource reads behavioural feature values for a payment. Values
// exclude the payment itself. It is safe for concurrent use.
type FeatureSource interface {
	// Features appends the value of every defined feature for p to dst.
	Features(ctx context.Context, p *Payment, dst []FeatureValue) ([]FeatureValue, error)
}

// Limiter computes the dynamic limits of the paying entity.
type Limiter interface {
	Limits(ctx context.Context, p *Payment) (Limits, error)
}

// DecisionStore keeps decision records durably.
type DecisionStore interface {
	// Lookup returns the record of a transaction id, or an error wrapping
	// ErrNotFound.
	Lookup(ctx context.Context, transactionID string) (*Record, error)
	// Commit durably stores rec (assigning rec.Seq) and records the payment
	// into the behavioural features. When it returns nil the decision may
	// be acknowledged. When a record of rec.TransactionID is already
	// stored, it writes nothing and returns a *DuplicateError holding that
	// record: the idempotency check happens inside the durable write, so a
	// new transaction costs no separate read.
	Commit(ctx context.Context, rec *Record) error
}

// DuplicateError is DecisionStore.Commit's answer for a transaction that
// was already decided: nothing was written, and Stored is the record kept.
type DuplicateError struct {
	Stored *Record
}

// Error implements error.
func (e *DuplicateError) Error() string {
	return fmt.Sprintf("transaction %q was already decided", e.Stored.TransactionID)
}
