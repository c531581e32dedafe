package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MaxNoteLen bounds the note of a feedback label, in bytes.
const MaxNoteLen = 1024

// Labeler stores feedback labels on decision records. It is safe for
// concurrent use.
type Labeler interface {
	// AddLabel attaches l to the decision and returns the updated record.
	// added is false when the decision already carried that label; nothing
	// changes then. An unknown decision is an error wrapping ErrNotFound.
	AddLabel(ctx context.Context, decisionID string, l Label) (rec *Record, added bool, err error)
}

// TrustUpdater applies the effects of a label to the paying entity: its
// trust, block lists. It is safe for concurrent use.
type TrustUpdater interface {
	// ApplyLabel applies the effects of label l, already stored on rec.
	// It must be idempotent per decision and label: called again for the
	// same pair it changes nothing and reports Applied false, so a caller
	// may retry after a partial failure.
	ApplyLabel(ctx context.Context, rec *Record, l Label) (LabelEffect, error)
}

// LabelEffect is what a label changed beyond the decision record.
type LabelEffect struct {
	// Applied is false when the label had no effect to apply: no effect is
	// configured for it, or it was applied before.
	Applied bool
	// Entity is the paying entity ("account:acc_42"); empty when the
	// payment has none.
	Entity string
	// TrustBefore and TrustAfter are the entity's trust multiplier around
	// the change; equal when trust did not move.
	TrustBefore, TrustAfter float64
	// Blocked lists the block-list entries the label added.
	Blocked []BlockedItem
}

// BlockedItem is one value added to a block list by feedback.
type BlockedItem struct {
	List  string
	Value string
	// ExpiresAt is when the entry lapses; zero never.
	ExpiresAt time.Time
}

// FeedbackResult is the outcome of one feedback report.
type FeedbackResult struct {
	// Record is the decision with its labels after the report.
	Record *Record
	// Added is false when the decision already carried the label: a repeated
	// report changes nothing.
	Added bool
	// Effect is what the label changed; zero when nothing changed.
	Effect LabelEffect
}

// Feedback attaches a feedback label (challenge_passed, challenge_failed,
// legit, fraud, chargeback) to a decision and applies its effects on the
// paying entity. l.Label and l.Note come from the caller; the source and
// time are filled in here.
//
// It is idempotent: the same label twice changes nothing the second time.
// An invalid label is a *FieldError on "label"; an unknown decision wraps
// ErrNotFound. When the label is stored but its effects fail, the error is
// returned and a retry of the same report applies them.
func (e *Engine) Feedback(ctx context.Context, decisionID string, l Label) (FeedbackResult, error) {
	if err := e.checkLabel(&l); err != nil {
		return FeedbackResult{}, err
	}
	if e.cfg.Labels == nil {
		return FeedbackResult{}, fmt.Errorf("feedback is not configured: %w", ErrUnavailable)
	}
	if decisionID == "" {
		return FeedbackResult{}, Invalid("decision_id", "required", "decision_id is required")
	}
	l.CreatedAt = e.cfg.Now().UTC()
	l.Source = Actor(ctx)
	rec, added, err := e.cfg.Labels.AddLabel(ctx, decisionID, l)
	if err != nil {
		return FeedbackResult{}, err
	}
	res := FeedbackResult{Record: rec, Added: added}
	if e.cfg.Trust == nil {
		return res, nil
	}
	// Called even when the label was already there: the updater is
	// idempotent, so this completes effects a failed earlier report left
	// undone and is a no-op otherwise.
	eff, err := e.cfg.Trust.ApplyLabel(ctx, rec, l)
	if err != nil {
		return res, fmt.Errorf("apply %s to decision %s: %w", l.Label, rec.ID, err)
	}
	res.Effect = eff
	return res, nil
}

// FeedbackByTransaction is Feedback for the decision of a transaction id.
func (e *Engine) FeedbackByTransaction(ctx context.Context, transactionID string, l Label) (FeedbackResult, error) {
	if err := e.checkLabel(&l); err != nil {
		return FeedbackResult{}, err
	}
	if transactionID == "" {
		return FeedbackResult{}, Invalid("transaction_id", "required", "transaction_id is required")
	}
	rec, err := e.cfg.Store.Lookup(ctx, transactionID)
	if errors.Is(err, ErrNotFound) {
		return FeedbackResult{}, fmt.Errorf("transaction %q was never decided: %w", transactionID, ErrNotFound)
	}
	if err != nil {
		return FeedbackResult{}, fmt.Errorf("look up transaction: %w", err)
	}
	return e.Feedback(ctx, rec.ID, l)
}

func (e *Engine) checkLabel(l *Label) error {
	switch {
	case l.Label == "":
		return Invalid("label", "required", "label is required")
	case !ValidLabel(l.Label):
		return Invalid("label", "invalid_label", fmt.Sprintf("unknown label %q: use challenge_passed, challenge_failed, legit, fraud or chargeback", l.Label))
	case len(l.Note) > MaxNoteLen:
		return Invalid("note", "too_long", fmt.Sprintf("note is longer than %d bytes", MaxNoteLen))
	case LooksLikePAN(l.Note):
		return Invalid("note", "card_number_refused", "the note looks like it holds a card number; never send one")
	}
	return nil
}
