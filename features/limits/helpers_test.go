package limits_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/featurestest"
	"github.com/riskengine/risk/features/limits"
	"github.com/riskengine/risk/features/lists"
	"github.com/riskengine/risk/rules"
)

// The limiter is tested on a real Badger feature store, which keeps the
// daily spend it reads; these helpers open one as package features' tests
// do.

// openStore opens a Store in dir with defs, closed at the end of the test.
func openStore(tb testing.TB, dir string, defs []features.Definition, opts ...func(*features.Options)) *features.Store {
	tb.Helper()
	o := features.Options{Dir: dir}
	for _, f := range opts {
		f(&o)
	}
	return featurestest.Open(tb, o, defs)
}

var (
	record = featurestest.Record
	commit = featurestest.Commit
)

// txCounter numbers the fixture's payments ("tx_lim_N", apart from
// featurestest.Record's "tx_N").
var txCounter atomic.Int64

// limClock is a settable clock.
type limClock struct{ ns atomic.Int64 }

func newLimClock() *limClock {
	c := &limClock{}
	c.ns.Store(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *limClock) now() time.Time                  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *limClock) add(d time.Duration)             { c.ns.Add(int64(d)) }
func (c *limClock) since(d time.Duration) time.Time { return c.now().Add(d) }

func compilePredicate(src string) (limits.PaymentPredicate, error) {
	p, err := rules.CompilePaymentPredicate(src)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// limPolicy is the policy the maths tests use: USD base, a new-account
// segment, trust 0.25..3, floors and ceilings.
func limPolicy() limits.Policy {
	p := limits.DefaultPolicy()
	p.Rates = map[string]float64{"EUR": 0.9, "JPY": 150, "KWD": 0.31}
	p.Segments = []limits.Segment{
		{Name: "new_account", When: "account.age_days < 7", SingleMax: 20_000, DailyMax: 50_000},
		{Name: "established", SingleMax: 100_000, DailyMax: 300_000},
	}
	p.Trust = limits.TrustBounds{Initial: 1, Floor: 0.25, Ceiling: 3}
	p.LimitsFloor = limits.Amounts{SingleMax: 1_000, DailyMax: 5_000}
	p.LimitsCeiling = limits.Amounts{SingleMax: 200_000, DailyMax: 500_000}
	return p
}

type limFixture struct {
	store *features.Store
	lists *lists.Store
	lim   *limits.Limiter
	clock *limClock
	audit *[]string
}

// openLimiter opens a store in dir keeping spend per account, with a
// limiter and the block lists, and stores policy when given.
func openLimiter(tb testing.TB, dir string, clock *limClock, policy *limits.Policy) *limFixture {
	tb.Helper()
	s := openStore(tb, dir, nil, func(o *features.Options) {
		o.LimitsEntity = limits.EntityAccount
		o.Now = clock.now
	})
	lists := lists.New(s.KV(), clock.now)
	if err := lists.Load(); err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	audit := &[]string{}
	src, err := s.LimiterSources()
	if err != nil {
		tb.Fatal(err)
	}
	lim, err := limits.New(src, limits.Options{
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
		TransactionID: fmt.Sprintf("tx_lim_%d", txCounter.Add(1)), OccurredAt: f.clock.now(),
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
