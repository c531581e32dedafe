package features_test

import (
	"context"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

// TestLabelFilteredFeature checks that a feature filtered on labels counts
// a payment once a label admits it, once however often it is labelled.
func TestLabelFilteredFeature(t *testing.T) {
	defs := []features.Definition{
		{Name: "card_chargebacks_90d", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "90d", Where: `"chargeback" in labels`},
		{Name: "card_bad_90d", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "90d", Where: `decision == "deny" || "fraud" in labels`},
	}
	s := openStore(t, t.TempDir(), defs)
	now := time.Now().UTC()
	pay := engine.Payment{OccurredAt: now.Add(-10 * 24 * time.Hour), Card: engine.Card{Fingerprint: "fp_x"}}
	allowed, denied := record(pay, engine.Allow), record(pay, engine.Deny)
	commit(t, s, allowed)
	commit(t, s, denied)
	probe := engine.Payment{OccurredAt: now, Card: engine.Card{Fingerprint: "fp_x"}}
	if got := value(t, s, probe, "card_chargebacks_90d"); got != 0 {
		t.Fatalf("before labels: %v, want 0", got)
	}
	ctx := context.Background()
	label := func(rec *engine.Record, l string) {
		t.Helper()
		if _, _, err := s.AddLabel(ctx, rec.ID, engine.Label{Label: l}); err != nil {
			t.Fatal(err)
		}
	}
	label(allowed, engine.LabelChargeback)
	label(allowed, engine.LabelChargeback) // idempotent
	label(allowed, engine.LabelFraud)      // admitted by card_bad_90d now
	label(denied, engine.LabelFraud)       // already counted as denied
	if got := value(t, s, probe, "card_chargebacks_90d"); got != 1 {
		t.Errorf("chargebacks = %v, want 1", got)
	}
	if got := value(t, s, probe, "card_bad_90d"); got != 2 {
		t.Errorf("bad = %v, want 2 (the denied payment once, the fraud one once)", got)
	}
}
