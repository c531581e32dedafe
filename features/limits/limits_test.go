package limits_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/limits"
)

func TestLimitsPolicyMaths(t *testing.T) {
	tests := []struct {
		name            string
		policy          func(p *limits.Policy)
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
			policy: func(p *limits.Policy) { p.Trust.Initial = 2.5 },
			single: 200_000, daily: 500_000, segment: "established", adjustmentsHave: "capped at the policy ceiling of 2000.00 USD",
		},
		{
			name: "ceiling converted to JPY", currency: "JPY",
			policy: func(p *limits.Policy) { p.Trust.Initial = 3 },
			single: 300_000, daily: 750_000, segment: "established", adjustmentsHave: "capped at the policy ceiling of 300000 JPY",
		},
		{
			name: "low trust raised to floor", currency: "USD", newAccount: true,
			policy: func(p *limits.Policy) {
				p.Trust.Initial = 0.25
				p.LimitsFloor = limits.Amounts{SingleMax: 10_000, DailyMax: 20_000}
			},
			single: 10_000, daily: 20_000, segment: "new_account", adjustmentsHave: "raised to the policy floor of 100.00 USD",
		},
		{
			name: "zero bounds do not bound", currency: "USD",
			policy: func(p *limits.Policy) {
				p.Trust.Initial = 3
				p.LimitsCeiling = limits.Amounts{}
			},
			single: 300_000, daily: 900_000, segment: "established",
		},
		{
			name: "EUR base to USD", currency: "USD",
			policy: func(p *limits.Policy) {
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

func TestPolicyValidation(t *testing.T) {
	f := openLimiter(t, t.TempDir(), newLimClock(), nil)
	tests := []struct {
		name  string
		mod   func(p *limits.Policy)
		field string // "" for a compile error
	}{
		{"no name", func(p *limits.Policy) { p.Name = "" }, "name"},
		{"bad base", func(p *limits.Policy) { p.BaseCurrency = "XXX" }, "base_currency"},
		{"bad rate", func(p *limits.Policy) { p.Rates["EUR"] = 0 }, "rates.EUR"},
		{"base rate not 1", func(p *limits.Policy) { p.Rates["USD"] = 2 }, "rates.USD"},
		{"no segments", func(p *limits.Policy) { p.Segments = nil }, "segments"},
		{"last has when", func(p *limits.Policy) { p.Segments[1].When = "true" }, "segments[1].when"},
		{"duplicate segment", func(p *limits.Policy) { p.Segments[1].Name = "new_account" }, "segments[1].name"},
		{"zero base", func(p *limits.Policy) { p.Segments[0].SingleMax = 0 }, "segments[0]"},
		{"trust order", func(p *limits.Policy) { p.Trust.Floor = 2 }, "trust"},
		{"floor above ceiling", func(p *limits.Policy) { p.LimitsFloor.SingleMax = 900_000 }, "limits_floor.single_max"},
		{"unknown label", func(p *limits.Policy) { p.Effects["oops"] = limits.Effect{} }, "effects.oops"},
		{"bad block_for", func(p *limits.Policy) { p.Effects["fraud"] = limits.Effect{BlockFor: "soon"} }, "effects.fraud.block_for"},
		{"bad when", func(p *limits.Policy) { p.Segments[0].When = "account.agedays < 7" }, ""},
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
	if _, err := f.lim.SetOverride(context.Background(), "account", "acc_2", limits.Override{DailyMax: 1_000_000, Reason: "r", ExpiresAt: clock.since(time.Hour)}); err != nil {
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
	// warm: entities seen recently, their state in memory.
	b.Run("warm", func(b *testing.B) {
		for i := range pays {
			if _, err := f.lim.Limits(ctx, &pays[i]); err != nil {
				b.Fatal(err)
			}
		}
		var l engine.Limits
		var err error
		i := 0
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			l, err = f.lim.Limits(ctx, &pays[i%accounts])
			i++
		}
		reportCPU(b, cpu)
		if err != nil || l.SingleMax == 0 {
			b.Fatalf("limits = %+v, %v", l, err)
		}
	})
	// cold: an entity never seen (its spend window is looked up in Badger).
	b.Run("cold", func(b *testing.B) {
		p := pays[0]
		var l engine.Limits
		var err error
		i := 0
		b.ReportAllocs()
		cpu := cpuTime()
		for b.Loop() {
			p.Account.ID = "acc_cold_" + strconv.Itoa(i)
			l, err = f.lim.Limits(ctx, &p)
			i++
		}
		reportCPU(b, cpu)
		if err != nil || l.SingleMax == 0 {
			b.Fatalf("limits = %+v, %v", l, err)
		}
	})
}

// cpuTime is the CPU time the process used so far. On a shared machine it
// measures the work better than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time per operation since start
// (garbage collection included) as cpu-ns/op.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}
