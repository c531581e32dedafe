package limits_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/limits"
)

func TestTrustFeedback(t *testing.T) {
	pol := limPolicy()
	f := openLimiter(t, t.TempDir(), newLimClock(), &pol)
	rec := f.decide(t, f.payment("acc_1", 150_000, "USD"), engine.Challenge)

	eff := f.label(t, rec, engine.LabelChallengePassed)
	if !eff.Applied || eff.TrustBefore != 1 || eff.TrustAfter != 1.25 || eff.Entity != "account:acc_1" {
		t.Fatalf("challenge_passed effect = %+v", eff)
	}
	again := f.label(t, rec, engine.LabelChallengePassed)
	if again.Applied || again.TrustAfter != 1.25 {
		t.Fatalf("repeated label effect = %+v, want nothing applied", again)
	}
	f.clock.add(24 * time.Hour)
	got := f.limits(t, f.payment("acc_1", 1, "USD"))
	if got.Trust != 1.25 || got.SingleMax != 125_000 || got.BaseSingleMax != 100_000 {
		t.Errorf("after a pass: trust %v single %d base %d, want 1.25, 125000, 100000", got.Trust, got.SingleMax, got.BaseSingleMax)
	}
	cause := strings.Join(got.Adjustments, "; ")
	if !strings.Contains(cause, "challenge_passed on decision "+rec.ID+" raised trust from 1 to 1.25") {
		t.Errorf("adjustments %q do not give the cause", cause)
	}

	failed := f.decide(t, f.payment("acc_1", 10, "USD"), engine.Challenge)
	if eff := f.label(t, failed, engine.LabelChallengeFailed); eff.TrustAfter != 1 {
		t.Errorf("challenge_failed: trust %v, want 1", eff.TrustAfter)
	}

	cb := f.decide(t, f.payment("acc_1", 10, "USD"), engine.Allow)
	eff = f.label(t, cb, engine.LabelChargeback)
	if eff.TrustAfter != 0.25 || len(eff.Blocked) != 1 || eff.Blocked[0].List != limits.ListBlockedCards {
		t.Fatalf("chargeback effect = %+v, want trust 0.25 and the card blocked", eff)
	}
	if want := f.clock.since(180 * 24 * time.Hour); !eff.Blocked[0].ExpiresAt.Equal(want) {
		t.Errorf("block expires %v, want %v", eff.Blocked[0].ExpiresAt, want)
	}
	if !f.lists.Contains(limits.ListBlockedCards, "fp_acc_1") || f.lists.Contains(limits.ListBlockedDevices, "dev_acc_1") {
		t.Error("chargeback should block the card and not the device")
	}
	if got := f.limits(t, f.payment("acc_1", 1, "USD")); got.SingleMax != 25_000 {
		t.Errorf("after a chargeback: single %d, want 25000", got.SingleMax)
	}
	f.clock.add(time.Second) // the newest decision is the basis of Describe
	fraud := f.decide(t, f.payment("acc_1", 10, "USD"), engine.Allow)
	if eff := f.label(t, fraud, engine.LabelFraud); len(eff.Blocked) != 1 || eff.Blocked[0].List != limits.ListBlockedDevices {
		t.Errorf("fraud effect = %+v, want only the device newly blocked (the card already is, for longer)", eff)
	}

	d, err := f.lim.Describe(context.Background(), "account", "acc_1", "EUR")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.History) != 4 || d.History[0].Label != engine.LabelFraud || d.History[3].Label != engine.LabelChallengePassed {
		t.Errorf("history = %+v, want 4 label events newest first", d.History)
	}
	if d.Limits.Currency != "EUR" || d.Limits.SingleMax != 22_500 || d.Basis != fraud.ID {
		t.Errorf("describe = %+v", d)
	}
	if n := len(*f.audit); n != 5 { // policy + 4 effects
		t.Errorf("audit entries = %v, want 5", *f.audit)
	}
}

func TestTrustNeverPassesCeiling(t *testing.T) {
	pol := limPolicy()
	pol.LimitsCeiling = limits.Amounts{SingleMax: 250_000, DailyMax: 10_000_000}
	f := openLimiter(t, t.TempDir(), newLimClock(), &pol)
	for i := range 30 {
		rec := f.decide(t, f.payment("acc_1", 10, "USD"), engine.Challenge)
		f.label(t, rec, engine.LabelChallengePassed)
		got := f.limits(t, f.payment("acc_1", 1, "USD"))
		if got.Trust > pol.Trust.Ceiling || got.SingleMax > pol.LimitsCeiling.SingleMax {
			t.Fatalf("after %d passes: trust %v single %d, above the ceiling", i+1, got.Trust, got.SingleMax)
		}
	}
	got := f.limits(t, f.payment("acc_1", 1, "USD"))
	if got.Trust != 3 || got.SingleMax != 250_000 || got.DailyMax != 900_000 {
		t.Errorf("after 30 passes: trust %v single %d daily %d, want 3, 250000, 900000", got.Trust, got.SingleMax, got.DailyMax)
	}
}

func TestTrustConcurrentFeedbackLosesNothing(t *testing.T) {
	pol := limPolicy()
	pol.Effects[engine.LabelChallengePassed] = limits.Effect{TrustStep: 0.01}
	pol.Effects[engine.LabelLegit] = limits.Effect{TrustStep: 0.01}
	f := openLimiter(t, t.TempDir(), newLimClock(), &pol)
	const n = 60
	recs := make([]*engine.Record, n)
	for i := range recs {
		recs[i] = f.decide(t, f.payment("acc_hot", 10, "USD"), engine.Challenge)
	}
	var wg sync.WaitGroup
	for i := range 2 * n { // every label twice, concurrently: each applies once
		wg.Add(1)
		go func() {
			defer wg.Done()
			label := engine.LabelChallengePassed
			if i%4 >= 2 {
				label = engine.LabelLegit
			}
			if _, err := f.lim.ApplyLabel(context.Background(), recs[i/2], engine.Label{Label: label}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// n/2 decisions got challenge_passed twice, n/2 got legit twice.
	if got := f.limits(t, f.payment("acc_hot", 1, "USD")).Trust; got != 1+0.01*n {
		t.Errorf("trust = %v, want %v", got, 1+0.01*n)
	}
}

func TestOverrideExpiry(t *testing.T) {
	pol := limPolicy()
	clock := newLimClock()
	f := openLimiter(t, t.TempDir(), clock, &pol)
	ctx := engine.WithPrincipal(context.Background(), engine.Principal{Name: "alice", Role: engine.RoleAnalyst})
	ov, err := f.lim.SetOverride(ctx, "account", "acc_vip", limits.Override{
		SingleMax: 9_000_00, Currency: "EUR", Reason: "VIP, verified by phone", ExpiresAt: clock.since(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	if ov.Author != "alice" || ov.Entity != "account:acc_vip" {
		t.Errorf("override = %+v", ov)
	}
	got := f.limits(t, f.payment("acc_vip", 1, "USD"))
	if got.Override == nil || got.SingleMax != 1_000_000 || got.DailyMax != 300_000 || got.Override.Reason != "VIP, verified by phone" {
		t.Errorf("with override: %+v (single want 10000.00 USD, daily unchanged)", got)
	}
	clock.add(59 * time.Minute)
	if got := f.limits(t, f.payment("acc_vip", 1, "USD")); got.Override == nil {
		t.Error("override lapsed early")
	}
	clock.add(time.Minute)
	if got := f.limits(t, f.payment("acc_vip", 1, "USD")); got.Override != nil || got.SingleMax != 100_000 {
		t.Errorf("after expiry: %+v", got)
	}
	if err := f.lim.DeleteOverride(ctx, "account", "acc_vip"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("delete expired override: err = %v, want not found", err)
	}
}

func TestOverrideValidation(t *testing.T) {
	pol := limPolicy()
	clock := newLimClock()
	f := openLimiter(t, t.TempDir(), clock, &pol)
	ok := limits.Override{SingleMax: 1, Reason: "r", ExpiresAt: clock.since(time.Hour)}
	tests := []struct {
		name       string
		entityType string
		id         string
		mod        func(o *limits.Override)
		field      string
	}{
		{"wrong entity type", "card", "x", nil, "entity_type"},
		{"no id", "account", "", nil, "id"},
		{"no amount", "account", "a", func(o *limits.Override) { o.SingleMax = 0 }, "single_max"},
		{"no reason", "account", "a", func(o *limits.Override) { o.Reason = "" }, "reason"},
		{"no expiry", "account", "a", func(o *limits.Override) { o.ExpiresAt = time.Time{} }, "expires_at"},
		{"past expiry", "account", "a", func(o *limits.Override) { o.ExpiresAt = clock.since(-time.Second) }, "expires_at"},
		{"too far", "account", "a", func(o *limits.Override) { o.ExpiresAt = clock.since(400 * 24 * time.Hour) }, "expires_at"},
		{"unknown currency", "account", "a", func(o *limits.Override) { o.Currency = "CHF" }, "currency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			if tt.mod != nil {
				tt.mod(&o)
			}
			_, err := f.lim.SetOverride(context.Background(), tt.entityType, tt.id, o)
			var fe *engine.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Errorf("err = %v, want a field error on %s", err, tt.field)
			}
		})
	}
}
