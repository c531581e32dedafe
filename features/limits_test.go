package features_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
)

// limClock is a settable clock.
type limClock struct{ ns atomic.Int64 }

func newLimClock() *limClock {
	c := &limClock{}
	c.ns.Store(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *limClock) now() time.Time                  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *limClock) add(d time.Duration)             { c.ns.Add(int64(d)) }
func (c *limClock) set(t time.Time)                 { c.ns.Store(t.UnixNano()) }
func (c *limClock) since(d time.Duration) time.Time { return c.now().Add(d) }

func compilePredicate(src string) (features.PaymentPredicate, error) {
	p, err := rules.CompilePaymentPredicate(src)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// limPolicy is the policy the maths tests use: USD base, a new-account
// segment, trust 0.25..3, floors and ceilings.
func limPolicy() features.Policy {
	p := features.DefaultPolicy()
	p.Rates = map[string]float64{"EUR": 0.9, "JPY": 150, "KWD": 0.31}
	p.Segments = []features.Segment{
		{Name: "new_account", When: "account.age_days < 7", SingleMax: 20_000, DailyMax: 50_000},
		{Name: "established", SingleMax: 100_000, DailyMax: 300_000},
	}
	p.Trust = features.TrustBounds{Initial: 1, Floor: 0.25, Ceiling: 3}
	p.LimitsFloor = features.Amounts{SingleMax: 1_000, DailyMax: 5_000}
	p.LimitsCeiling = features.Amounts{SingleMax: 200_000, DailyMax: 500_000}
	return p
}

type limFixture struct {
	store *features.Store
	lists *features.Lists
	lim   *features.Limiter
	clock *limClock
	audit *[]string
}

// openLimiter opens a store in dir keeping spend per account, with a
// limiter and the block lists, and stores policy when given.
func openLimiter(tb testing.TB, dir string, clock *limClock, policy *features.Policy) *limFixture {
	tb.Helper()
	s := openStore(tb, dir, nil, func(o *features.Options) {
		o.LimitsEntity = features.EntityAccount
		o.Now = clock.now
	})
	lists := features.NewLists(s.DB(), clock.now)
	if err := lists.Load(); err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	audit := &[]string{}
	lim, err := features.NewLimiter(s, features.LimiterOptions{
		Compile: compilePredicate, Lists: lists, Now: clock.now,
		Audit: func(_ context.Context, action, target string, _, _ any) error {
			mu.Lock()
			*audit = append(*audit, action+" "+target)
			mu.Unlock()
			return nil
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := lim.Load(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if policy != nil {
		if _, err := lim.SetPolicy(context.Background(), *policy); err != nil {
			tb.Fatalf("set policy: %v", err)
		}
	}
	return &limFixture{store: s, lists: lists, lim: lim, clock: clock, audit: audit}
}

// limPayment is a payment by an established account (created a year
// before the clock) unless changed.
func (f *limFixture) payment(account string, amount int64, currency string) engine.Payment {
	return engine.Payment{
		TransactionID: fmt.Sprintf("tx_%d", txCounter.Add(1)), OccurredAt: f.clock.now(),
		Amount: amount, Currency: currency,
		Account: engine.Account{ID: account, CreatedAt: f.clock.since(-365 * 24 * time.Hour)},
		Card:    engine.Card{Fingerprint: "fp_" + account}, Device: engine.Device{ID: "dev_" + account},
	}
}

func (f *limFixture) limits(tb testing.TB, p engine.Payment) engine.Limits {
	tb.Helper()
	l, err := f.lim.Limits(context.Background(), &p)
	if err != nil {
		tb.Fatalf("limits: %v", err)
	}
	return l
}

// decide computes the limits of p, records the decision with outcome and
// returns it.
func (f *limFixture) decide(tb testing.TB, p engine.Payment, outcome engine.Outcome) *engine.Record {
	tb.Helper()
	rec := record(p, outcome)
	rec.Limits = f.limits(tb, p)
	commit(tb, f.store, rec)
	return rec
}

func (f *limFixture) label(tb testing.TB, rec *engine.Record, label string) engine.LabelEffect {
	tb.Helper()
	lb := engine.Label{Label: label, Source: "gateway", CreatedAt: f.clock.now()}
	eff, err := f.lim.ApplyLabel(context.Background(), rec, lb)
	if err != nil {
		tb.Fatalf("apply %s: %v", label, err)
	}
	return eff
}

func TestLimitsPolicyMaths(t *testing.T) {
	tests := []struct {
		name            string
		policy          func(p *features.Policy)
		currency        string
		newAccount      bool
		single, daily   int64
		segment         string
		adjustmentsHave string
	}{
		{name: "established USD", currency: "USD", single: 100_000, daily: 300_000, segment: "established"},
		{name: "new account", currency: "USD", newAccount: true, single: 20_000, daily: 50_000, segment: "new_account"},
		{name: "EUR two decimals", currency: "EUR", single: 90_000, daily: 270_000, segment: "established"},
		{name: "JPY no decimals", currency: "JPY", single: 150_000, daily: 450_000, segment: "established"},
		{name: "KWD three decimals", currency: "KWD", single: 310_000, daily: 930_000, segment: "established"},
		{
			name: "trust capped by ceiling amounts", currency: "USD",
			policy: func(p *features.Policy) { p.Trust.Initial = 2.5 },
			single: 200_000, daily: 500_000, segment: "established", adjustmentsHave: "capped at the policy ceiling of 2000.00 USD",
		},
		{
			name: "ceiling converted to JPY", currency: "JPY",
			policy: func(p *features.Policy) { p.Trust.Initial = 3 },
			single: 300_000, daily: 750_000, segment: "established", adjustmentsHave: "capped at the policy ceiling of 300000 JPY",
		},
		{
			name: "low trust raised to floor", currency: "USD", newAccount: true,
			policy: func(p *features.Policy) {
				p.Trust.Initial = 0.25
				p.LimitsFloor = features.Amounts{SingleMax: 10_000, DailyMax: 20_000}
			},
			single: 10_000, daily: 20_000, segment: "new_account", adjustmentsHave: "raised to the policy floor of 100.00 USD",
		},
		{
			name: "zero bounds do not bound", currency: "USD",
			policy: func(p *features.Policy) {
				p.Trust.Initial = 3
				p.LimitsCeiling = features.Amounts{}
			},
			single: 300_000, daily: 900_000, segment: "established",
		},
		{
			name: "EUR base to USD", currency: "USD",
			policy: func(p *features.Policy) {
				p.BaseCurrency = "EUR"
				p.Rates = map[string]float64{"USD": 1.08}
			},
			single: 108_000, daily: 324_000, segment: "established",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := limPolicy()
			if tt.policy != nil {
				tt.policy(&pol)
			}
			f := openLimiter(t, t.TempDir(), newLimClock(), &pol)
			p := f.payment("acc_1", 100, tt.currency)
			if tt.newAccount {
				p.Account.CreatedAt = f.clock.since(-48 * time.Hour)
			}
			got := f.limits(t, p)
			if got.SingleMax != tt.single || got.DailyMax != tt.daily || got.Segment != tt.segment {
				t.Errorf("single, daily, segment = %d, %d, %s; want %d, %d, %s", got.SingleMax, got.DailyMax, got.Segment, tt.single, tt.daily, tt.segment)
			}
			if got.DailyRemaining != tt.daily || got.DailySpent != 0 || got.Currency != tt.currency || got.Entity != "account:acc_1" {
				t.Errorf("limits = %+v", got)
			}
			if got.Policy != "default v1" {
				t.Errorf("policy = %q, want %q", got.Policy, "default v1")
			}
			if adj := strings.Join(got.Adjustments, "; "); !strings.Contains(adj, tt.adjustmentsHave) {
				t.Errorf("adjustments %q lack %q", adj, tt.adjustmentsHave)
			}
		})
	}
}

func TestLimitsUnknownCurrencyAndNoEntity(t *testing.T) {
	pol := limPolicy()
	f := openLimiter(t, t.TempDir(), newLimClock(), &pol)
	_, err := f.lim.Limits(context.Background(), new(f.payment("acc_1", 100, "CHF")))
	var fe *engine.FieldError
	if !errors.As(err, &fe) || fe.Field != "currency" || fe.Code != "unknown_currency" || !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("unknown currency: err = %v, want a field error on currency", err)
	}
	p := f.payment("", 100, "USD")
	if got := f.limits(t, p); got.Entity != "" || got.SingleMax != 0 {
		t.Errorf("payment without account: limits = %+v, want none", got)
	}
}

func TestLimitsDailySpend(t *testing.T) {
	pol := limPolicy()
	f := openLimiter(t, t.TempDir(), newLimClock(), &pol)
	f.decide(t, f.payment("acc_1", 10_000, "USD"), engine.Allow)
	f.decide(t, f.payment("acc_1", 4_500, "EUR"), engine.Challenge) // 50.00 USD
	f.decide(t, f.payment("acc_1", 90_000, "USD"), engine.Deny)     // spends nothing
	f.decide(t, f.payment("acc_2", 70_000, "USD"), engine.Allow)    // another account
	f.clock.add(time.Minute)

	got := f.limits(t, f.payment("acc_1", 1, "USD"))
	if got.DailySpent != 15_000 || got.DailyRemaining != 300_000-15_000 {
		t.Errorf("USD: spent %d remaining %d, want 15000 and 285000", got.DailySpent, got.DailyRemaining)
	}
	got = f.limits(t, f.payment("acc_1", 1, "JPY"))
	if got.DailySpent != 22_500 || got.DailyRemaining != 450_000-22_500 {
		t.Errorf("JPY: spent %d remaining %d, want 22500 and 427500", got.DailySpent, got.DailyRemaining)
	}
	f.clock.add(25 * time.Hour)
	if got := f.limits(t, f.payment("acc_1", 1, "USD")); got.DailySpent != 0 || got.DailyRemaining != 300_000 {
		t.Errorf("a day later: spent %d remaining %d, want 0 and 300000", got.DailySpent, got.DailyRemaining)
	}
}

func TestLimitsRemainingNeverNegative(t *testing.T) {
	pol := limPolicy()
	f := openLimiter(t, t.TempDir(), newLimClock(), &pol)
	for range 4 {
		f.decide(t, f.payment("acc_1", 100_000, "USD"), engine.Challenge)
	}
	got := f.limits(t, f.payment("acc_1", 1, "USD"))
	if got.DailySpent != 400_000 || got.DailyRemaining != 0 {
		t.Errorf("spent %d remaining %d, want 400000 and 0", got.DailySpent, got.DailyRemaining)
	}
}

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
	if eff.TrustAfter != 0.25 || len(eff.Blocked) != 1 || eff.Blocked[0].List != features.ListBlockedCards {
		t.Fatalf("chargeback effect = %+v, want trust 0.25 and the card blocked", eff)
	}
	if want := f.clock.since(180 * 24 * time.Hour); !eff.Blocked[0].ExpiresAt.Equal(want) {
		t.Errorf("block expires %v, want %v", eff.Blocked[0].ExpiresAt, want)
	}
	if !f.lists.Contains(features.ListBlockedCards, "fp_acc_1") || f.lists.Contains(features.ListBlockedDevices, "dev_acc_1") {
		t.Error("chargeback should block the card and not the device")
	}
	if got := f.limits(t, f.payment("acc_1", 1, "USD")); got.SingleMax != 25_000 {
		t.Errorf("after a chargeback: single %d, want 25000", got.SingleMax)
	}
	f.clock.add(time.Second) // the newest decision is the basis of Describe
	fraud := f.decide(t, f.payment("acc_1", 10, "USD"), engine.Allow)
	if eff := f.label(t, fraud, engine.LabelFraud); len(eff.Blocked) != 1 || eff.Blocked[0].List != features.ListBlockedDevices {
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
	pol.LimitsCeiling = features.Amounts{SingleMax: 250_000, DailyMax: 10_000_000}
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
	pol.Effects[engine.LabelChallengePassed] = features.Effect{TrustStep: 0.01}
	pol.Effects[engine.LabelLegit] = features.Effect{TrustStep: 0.01}
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
	ov, err := f.lim.SetOverride(ctx, "account", "acc_vip", features.Override{
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
	ok := features.Override{SingleMax: 1, Reason: "r", ExpiresAt: clock.since(time.Hour)}
	tests := []struct {
		name       string
		entityType string
		id         string
		mod        func(o *features.Override)
		field      string
	}{
		{"wrong entity type", "card", "x", nil, "entity_type"},
		{"no id", "account", "", nil, "id"},
		{"no amount", "account", "a", func(o *features.Override) { o.SingleMax = 0 }, "single_max"},
		{"no reason", "account", "a", func(o *features.Override) { o.Reason = "" }, "reason"},
		{"no expiry", "account", "a", func(o *features.Override) { o.ExpiresAt = time.Time{} }, "expires_at"},
		{"past expiry", "account", "a", func(o *features.Override) { o.ExpiresAt = clock.since(-time.Second) }, "expires_at"},
		{"too far", "account", "a", func(o *features.Override) { o.ExpiresAt = clock.since(400 * 24 * time.Hour) }, "expires_at"},
		{"unknown currency", "account", "a", func(o *features.Override) { o.Currency = "CHF" }, "currency"},
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

func TestPolicyValidation(t *testing.T) {
	f := openLimiter(t, t.TempDir(), newLimClock(), nil)
	tests := []struct {
		name  string
		mod   func(p *features.Policy)
		field string // "" for a compile error
	}{
		{"no name", func(p *features.Policy) { p.Name = "" }, "name"},
		{"bad base", func(p *features.Policy) { p.BaseCurrency = "XXX" }, "base_currency"},
		{"bad rate", func(p *features.Policy) { p.Rates["EUR"] = 0 }, "rates.EUR"},
		{"base rate not 1", func(p *features.Policy) { p.Rates["USD"] = 2 }, "rates.USD"},
		{"no segments", func(p *features.Policy) { p.Segments = nil }, "segments"},
		{"last has when", func(p *features.Policy) { p.Segments[1].When = "true" }, "segments[1].when"},
		{"duplicate segment", func(p *features.Policy) { p.Segments[1].Name = "new_account" }, "segments[1].name"},
		{"zero base", func(p *features.Policy) { p.Segments[0].SingleMax = 0 }, "segments[0]"},
		{"trust order", func(p *features.Policy) { p.Trust.Floor = 2 }, "trust"},
		{"floor above ceiling", func(p *features.Policy) { p.LimitsFloor.SingleMax = 900_000 }, "limits_floor.single_max"},
		{"unknown label", func(p *features.Policy) { p.Effects["oops"] = features.Effect{} }, "effects.oops"},
		{"bad block_for", func(p *features.Policy) { p.Effects["fraud"] = features.Effect{BlockFor: "soon"} }, "effects.fraud.block_for"},
		{"bad when", func(p *features.Policy) { p.Segments[0].When = "account.agedays < 7" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := limPolicy()
			tt.mod(&p)
			_, err := f.lim.SetPolicy(context.Background(), p)
			var fe *engine.FieldError
			switch {
			case tt.field == "":
				if !errors.Is(err, engine.ErrUnprocessable) || !strings.Contains(err.Error(), "segments[0].when: unknown name `account.agedays`; did you mean `account.age_days` (1:9)") {
					t.Errorf("err = %v, want a compile error with its position", err)
				}
			case !errors.As(err, &fe) || fe.Field != tt.field:
				t.Errorf("err = %v, want a field error on %s", err, tt.field)
			}
		})
	}
	if got := f.lim.Policy().Version; got != 0 {
		t.Errorf("a refused policy was stored: version %d", got)
	}
}

func TestLimitsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	clock := newLimClock()
	pol := limPolicy()
	f := openLimiter(t, dir, clock, &pol)
	rec := f.decide(t, f.payment("acc_1", 12_345, "USD"), engine.Challenge)
	f.label(t, rec, engine.LabelChallengePassed)
	if _, err := f.lim.SetOverride(context.Background(), "account", "acc_2", features.Override{DailyMax: 1_000_000, Reason: "r", ExpiresAt: clock.since(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	g := openLimiter(t, dir, clock, nil)
	if got := g.lim.Policy().Version; got != 1 {
		t.Errorf("policy version after restart = %d, want 1", got)
	}
	got := g.limits(t, g.payment("acc_1", 1, "USD"))
	if got.Trust != 1.25 || got.DailySpent != 12_345 {
		t.Errorf("after restart: trust %v spent %d, want 1.25 and 12345", got.Trust, got.DailySpent)
	}
	if got := g.limits(t, g.payment("acc_2", 1, "USD")); got.DailyMax != 1_000_000 {
		t.Errorf("override lost in restart: daily %d", got.DailyMax)
	}
}

func TestSpendBackfilledOnFirstUse(t *testing.T) {
	dir := t.TempDir()
	clock := newLimClock()
	// History decided with limits, by a store that kept no spend.
	s := openStore(t, dir, nil, func(o *features.Options) { o.Now = clock.now })
	p := engine.Payment{OccurredAt: clock.now(), Amount: 5_000, Currency: "USD", Account: engine.Account{ID: "acc_1"}}
	rec := record(p, engine.Allow)
	rec.Limits = engine.Limits{Entity: "account:acc_1", Currency: "USD", BaseCurrency: "USD", Rate: 1}
	commit(t, s, rec)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := openLimiter(t, dir, clock, nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := f.limits(t, f.payment("acc_1", 1, "USD"))
		if got.DailySpent == 5_000 && !strings.Contains(strings.Join(got.Adjustments, ";"), "rebuilt") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("spend not backfilled: %+v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

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

func BenchmarkLimits(b *testing.B) {
	pol := limPolicy()
	f := openLimiter(b, b.TempDir(), newLimClock(), &pol)
	const accounts = 10_000
	pays := make([]engine.Payment, accounts)
	for i := range pays {
		pays[i] = f.payment(fmt.Sprintf("acc_%d", i), 5_000, "EUR")
		if i%10 == 0 { // some history and learned trust
			rec := f.decide(b, pays[i], engine.Allow)
			f.label(b, rec, engine.LabelLegit)
		}
	}
	ctx := context.Background()
	for i := range pays { // warm the caches, as on a live server
		if _, err := f.lim.Limits(ctx, &pays[i]); err != nil {
			b.Fatal(err)
		}
	}
	var l engine.Limits
	var err error
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		l, err = f.lim.Limits(ctx, &pays[i%accounts])
		i++
	}
	if err != nil || l.SingleMax == 0 {
		b.Fatalf("limits = %+v, %v", l, err)
	}
}
