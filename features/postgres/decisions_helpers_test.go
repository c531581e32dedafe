package postgres_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/postgres"
	"github.com/riskengine/risk/features/postgres/pgtest"
)

// openDB opens a migrated backend on url in schema, closed when the test
// ends.
func openDB(tb testing.TB, url, schema string) *postgres.DB {
	tb.Helper()
	db, err := postgres.Open(context.Background(), postgres.Options{URL: url, Schema: schema, MaxConns: 8})
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(db.Close)
	return db
}

// newLog opens a backend in a schema of the test's own and a decision log
// on it without the background maintenance.
func newLog(tb testing.TB) (*postgres.Decisions, *postgres.DB) {
	tb.Helper()
	db := pgtest.Open(tb)
	return newDecisions(tb, db, postgres.DecisionOptions{}), db
}

// newDecisions starts a decision log on db, closed when the test ends.
// Background maintenance is off unless o says otherwise.
func newDecisions(tb testing.TB, db *postgres.DB, o postgres.DecisionOptions) *postgres.Decisions {
	tb.Helper()
	if o.MaintainEvery == 0 {
		o.MaintainEvery = -1
	}
	d := postgres.NewDecisions(db, o)
	tb.Cleanup(func() {
		if err := d.Close(context.Background()); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return d
}

// jan2026 is a fixed evaluation time with nanoseconds, which the record
// document must keep although the column holds microseconds.
var jan2026 = time.Date(2026, 1, 15, 10, 30, 0, 123456789, time.UTC)

// fullRecord returns a record with every field set.
func fullRecord(txID string, at time.Time) *engine.Record {
	deny := &engine.RuleInfo{ID: "r_velocity", Name: "velocity", Version: 3, Mode: engine.ModeActive,
		Action: engine.ActionDeny, Score: 40, Reason: "too_fast", Message: "too many payments"}
	shadow := &engine.RuleInfo{ID: "r_shadow", Name: "shadow", Version: 1, Mode: engine.ModeShadow,
		Action: engine.ActionScore, Score: 5}
	return &engine.Record{
		Decision: engine.Decision{
			ID: engine.DecisionID(txID), TransactionID: txID, Outcome: engine.Deny, Score: 40,
			Reasons: []engine.Reason{{Rule: "r_velocity", Code: "too_fast", Message: "too many payments"}},
			Limits: engine.Limits{
				Entity: "account:acc_1", Currency: "USD", SingleMax: 5000, DailyMax: 20000, DailyRemaining: 15000,
				DailySpent: 5000, Trust: 1.25, Policy: "default", Segment: "new", BaseSingleMax: 4000,
				BaseDailyMax: 16000, BaseCurrency: "EUR", Rate: 1.0825, Adjustments: []string{"trust raised by legit labels"},
				Override: &engine.LimitOverride{SingleMax: 7000, Reason: "vip", Author: "ana",
					ExpiresAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
			},
			RulesetVersion: 7, Degraded: true, DegradedCause: engine.CauseFeatureStoreUnavailable, EvaluatedAt: at,
		},
		Payment: engine.Payment{
			TransactionID: txID, OccurredAt: at.Add(-time.Second), Amount: 1299, Currency: "USD",
			Account:    engine.Account{ID: "acc_1", Email: "a@example.com", CreatedAt: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), Country: "US"},
			Card:       engine.Card{Fingerprint: "fp_1", BIN: "424242", Country: "US"},
			Device:     engine.Device{ID: "dev_1", IP: "192.0.2.1", IPCountry: "US"},
			Merchant:   engine.Merchant{ID: "m_1", MCC: "5411", Country: "US"},
			Attributes: map[string]any{"channel": "web", "risky": true, "items": 3.0},
		},
		Request:     []byte(`{"transaction_id":"` + txID + `",  "amount": 1299}`),
		RequestHash: "h_" + txID,
		Features: []engine.FeatureValue{
			{Name: "tx_count_1h", Value: 12, Ready: true},
			{Name: "amount_avg_7d", Value: 33.3333333333, Ready: false},
		},
		Rules:        []engine.RuleResult{{RuleInfo: deny, Matched: true}, {RuleInfo: shadow, Error: "division by zero"}},
		Thresholds:   engine.Thresholds{Challenge: 30, Deny: 60},
		DeterminedBy: "rule:r_velocity",
		Labels:       nil,
	}
}

// record returns a small record for searches.
func record(txID string, at time.Time, account, card string, o engine.Outcome) *engine.Record {
	return &engine.Record{
		Decision: engine.Decision{ID: engine.DecisionID(txID), TransactionID: txID, Outcome: o, EvaluatedAt: at},
		Payment: engine.Payment{TransactionID: txID, Amount: 100, Currency: "USD",
			Account: engine.Account{ID: account}, Card: engine.Card{Fingerprint: card}},
	}
}

func commit(tb testing.TB, d *postgres.Decisions, recs ...*engine.Record) {
	tb.Helper()
	for _, rec := range recs {
		if err := d.Commit(context.Background(), rec); err != nil {
			tb.Fatalf("commit %s: %v", rec.TransactionID, err)
		}
	}
}

// sameRecord fails the test when got and want differ.
func sameRecord(tb testing.TB, what string, got, want *engine.Record) {
	tb.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		tb.Errorf("%s:\ngot  %s\nwant %s", what, g, w)
	}
}

// ids returns the decision ids of recs.
func ids(recs []*engine.Record) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}
