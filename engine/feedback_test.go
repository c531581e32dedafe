package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
)

// fbLabeler is an in-memory Labeler over a memStore's records.
type fbLabeler struct {
	mu   sync.Mutex
	recs map[string]*engine.Record
}

func (l *fbLabeler) AddLabel(_ context.Context, id string, lb engine.Label) (*engine.Record, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rec, ok := l.recs[id]
	if !ok {
		return nil, false, engine.ErrNotFound
	}
	if rec.HasLabel(lb.Label) {
		return rec, false, nil
	}
	rec.Labels = append(rec.Labels, lb)
	return rec, true, nil
}

// fbTrust is a TrustUpdater from a function.
type fbTrust func(rec *engine.Record, l engine.Label) (engine.LabelEffect, error)

func (f fbTrust) ApplyLabel(_ context.Context, rec *engine.Record, l engine.Label) (engine.LabelEffect, error) {
	return f(rec, l)
}

func newFeedbackEngine(t *testing.T, trust engine.TrustUpdater) (*engine.Engine, *engine.Record) {
	t.Helper()
	store := newMemStore()
	labels := &fbLabeler{recs: map[string]*engine.Record{}}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	e := engine.New(engine.Config{Store: store, Labels: labels, Trust: trust, Now: func() time.Time { return now }})
	e.SetRules(denyOver(1000))
	rec, _, err := e.Decide(context.Background(), validPayment(), nil)
	if err != nil {
		t.Fatal(err)
	}
	labels.recs[rec.ID] = rec
	return e, rec
}

func TestFeedbackInput(t *testing.T) {
	e, rec := newFeedbackEngine(t, nil)
	tests := []struct {
		name  string
		id    string
		label engine.Label
		field string // "" for not found
	}{
		{"missing label", rec.ID, engine.Label{}, "label"},
		{"unknown label", rec.ID, engine.Label{Label: "stolen"}, "label"},
		{"label checked first", "dec_nope", engine.Label{Label: "stolen"}, "label"},
		{"long note", rec.ID, engine.Label{Label: engine.LabelLegit, Note: strings.Repeat("x", engine.MaxNoteLen+1)}, "note"},
		{"card number in note", rec.ID, engine.Label{Label: engine.LabelLegit, Note: "paid with 4111-1111-1111-1111"}, "note"},
		{"no decision id", "", engine.Label{Label: engine.LabelLegit}, "decision_id"},
		{"unknown decision", "dec_nope", engine.Label{Label: engine.LabelLegit}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Feedback(context.Background(), tt.id, tt.label)
			var fe *engine.FieldError
			switch {
			case tt.field == "":
				if !errors.Is(err, engine.ErrNotFound) {
					t.Errorf("err = %v, want not found", err)
				}
			case !errors.As(err, &fe) || fe.Field != tt.field:
				t.Errorf("err = %v, want a field error on %s", err, tt.field)
			}
		})
	}
	if _, err := e.FeedbackByTransaction(context.Background(), "tx_nope", engine.Label{Label: engine.LabelFraud}); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("unknown transaction: err = %v, want not found", err)
	}
}

func TestFeedbackAppliesEffectsOnce(t *testing.T) {
	var mu sync.Mutex
	applied := map[string]int{}
	trust := fbTrust(func(rec *engine.Record, l engine.Label) (engine.LabelEffect, error) {
		mu.Lock()
		defer mu.Unlock()
		key := rec.ID + "/" + l.Label
		applied[key]++
		if applied[key] > 1 { // idempotent, as the contract asks
			return engine.LabelEffect{Entity: "account:a", TrustBefore: 1.25, TrustAfter: 1.25}, nil
		}
		return engine.LabelEffect{Applied: true, Entity: "account:a", TrustBefore: 1, TrustAfter: 1.25}, nil
	})
	e, rec := newFeedbackEngine(t, trust)
	ctx := engine.WithPrincipal(context.Background(), engine.Principal{Name: "psp", Role: engine.RoleGateway})
	first, err := e.FeedbackByTransaction(ctx, rec.TransactionID, engine.Label{Label: engine.LabelChallengePassed, Note: "3DS"})
	if err != nil {
		t.Fatal(err)
	}
	if !first.Added || !first.Effect.Applied || first.Effect.TrustAfter != 1.25 {
		t.Errorf("first = %+v", first)
	}
	l := first.Record.Labels[0]
	if l.Source != "psp" || l.Note != "3DS" || !l.CreatedAt.Equal(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("stored label = %+v, want source psp and the engine's time", l)
	}
	second, err := e.Feedback(ctx, rec.ID, engine.Label{Label: engine.LabelChallengePassed})
	if err != nil {
		t.Fatal(err)
	}
	if second.Added || second.Effect.Applied || len(second.Record.Labels) != 1 {
		t.Errorf("second = %+v, want nothing changed", second)
	}
}

func TestFeedbackEffectFailureIsRetried(t *testing.T) {
	fail := true
	trust := fbTrust(func(*engine.Record, engine.Label) (engine.LabelEffect, error) {
		if fail {
			return engine.LabelEffect{}, errors.New("disk full")
		}
		return engine.LabelEffect{Applied: true}, nil
	})
	e, rec := newFeedbackEngine(t, trust)
	if _, err := e.Feedback(context.Background(), rec.ID, engine.Label{Label: engine.LabelFraud}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v, want the effect's failure", err)
	}
	fail = false
	res, err := e.Feedback(context.Background(), rec.ID, engine.Label{Label: engine.LabelFraud})
	if err != nil || res.Added || !res.Effect.Applied {
		t.Errorf("retry = %+v, %v: want the label already there and its effect applied now", res, err)
	}
}

func TestFeedbackUnconfigured(t *testing.T) {
	e := engine.New(engine.Config{Store: newMemStore()})
	if _, err := e.Feedback(context.Background(), "dec_1", engine.Label{Label: engine.LabelLegit}); !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("err = %v, want unavailable", err)
	}
}
