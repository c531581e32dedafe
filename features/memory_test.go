package features_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

// memOutcomeFilter is a where filter without the rules package: it matches
// `decision == "<outcome>"`.
type memOutcomeFilter engine.Outcome

func (o memOutcomeFilter) Match(rec *engine.Record) (bool, error) {
	return rec.Outcome == engine.Outcome(o), nil
}

func memCompileFilter(src string) (features.Filter, error) {
	var o string
	if _, err := fmt.Sscanf(src, "decision == %q", &o); err != nil {
		return nil, fmt.Errorf("test filter %q: %w", src, err)
	}
	return memOutcomeFilter(o), nil
}

var memT0 = time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)

func memPay(tx string, at time.Duration, card, account string, amount int64) engine.Payment {
	return engine.Payment{
		TransactionID: tx, OccurredAt: memT0.Add(at), Amount: amount, Currency: "USD",
		Account: engine.Account{ID: account, Email: account + "@example.com"},
		Card:    engine.Card{Fingerprint: card},
	}
}

func memValues(tb testing.TB, src engine.FeatureSource, p engine.Payment) map[string]float64 {
	tb.Helper()
	fv, err := src.Features(context.Background(), &p, nil)
	if err != nil {
		tb.Fatal(err)
	}
	out := make(map[string]float64, len(fv))
	for _, f := range fv {
		out[f.Name] = f.Value
	}
	return out
}

func TestMemoryPointInTime(t *testing.T) {
	defs := []features.Definition{
		{Name: "card_attempts_10m", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "10m"},
		{Name: "card_declines_24h", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "24h", Where: `decision == "deny"`},
		{Name: "card_accounts_7d", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Distinct, Field: "account.id", Window: "7d"},
		{Name: "account_amount_7d", Entity: features.Paths{"account.id"}, Aggregate: features.Sum, Field: "amount", Window: "7d"},
		{Name: "email_first_seen", Entity: features.Paths{"account.email"}, Aggregate: features.FirstSeen, Window: "30d"},
	}
	m, err := features.NewMemory(defs, memCompileFilter)
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		p       engine.Payment
		outcome engine.Outcome
		want    map[string]float64 // features seen by p, before it is applied
	}
	steps := []step{
		{memPay("t1", 0, "c1", "a1", 100), engine.Deny, map[string]float64{
			"card_attempts_10m": 0, "card_declines_24h": 0, "card_accounts_7d": 0, "account_amount_7d": 0, "email_first_seen": -1}},
		{memPay("t2", 2*time.Minute, "c1", "a2", 200), engine.Allow, map[string]float64{
			"card_attempts_10m": 1, "card_declines_24h": 1, "card_accounts_7d": 1, "account_amount_7d": 0, "email_first_seen": -1}},
		{memPay("t3", 5*time.Minute, "c1", "a1", 300), engine.Deny, map[string]float64{
			"card_attempts_10m": 2, "card_declines_24h": 1, "card_accounts_7d": 2, "account_amount_7d": 100, "email_first_seen": 300}},
		// 30 minutes later the 10 minute window has emptied; the others remain.
		{memPay("t4", 35*time.Minute, "c1", "a3", 400), engine.Allow, map[string]float64{
			"card_attempts_10m": 0, "card_declines_24h": 2, "card_accounts_7d": 2, "account_amount_7d": 0, "email_first_seen": -1}},
		// Eight days later only the first_seen of a1's email is still in its window.
		{memPay("t5", 8*24*time.Hour, "c1", "a1", 500), engine.Allow, map[string]float64{
			"card_attempts_10m": 0, "card_declines_24h": 0, "card_accounts_7d": 0, "account_amount_7d": 0, "email_first_seen": 8*24*3600 - 0}},
	}
	for _, s := range steps {
		t.Run(s.p.TransactionID, func(t *testing.T) {
			got := memValues(t, m, s.p)
			for name, want := range s.want {
				if got[name] != want {
					t.Errorf("%s = %v, want %v", name, got[name], want)
				}
			}
		})
		m.Apply(&engine.Record{Decision: engine.Decision{Outcome: s.outcome}, Payment: s.p})
	}
}

// TestMemoryNeverSeesLater pins point-in-time reads: a payment asked about
// before later payments are applied sees none of them, and asking again at
// an earlier time after they are applied excludes the later buckets.
func TestMemoryNeverSeesLater(t *testing.T) {
	defs := []features.Definition{{Name: "card_attempts_1h", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "1h"}}
	m, err := features.NewMemory(defs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		p := memPay(fmt.Sprint("t", i), time.Duration(i)*5*time.Minute, "c1", "a1", 100)
		if got := memValues(t, m, p)["card_attempts_1h"]; got != float64(i) {
			t.Fatalf("payment %d sees %v earlier payments, want %d", i, got, i)
		}
		m.Apply(&engine.Record{Payment: p})
	}
	// Asked at minute 12 after all ten were applied: only minutes 0, 5
	// and 10 are at or before it (buckets are one minute for a 1h window).
	if got := memValues(t, m, memPay("late", 12*time.Minute, "c1", "a1", 1))["card_attempts_1h"]; got != 3 {
		t.Errorf("at minute 12: %v, want 3", got)
	}
}

func TestMemoryRejectsBadDefinitions(t *testing.T) {
	_, err := features.NewMemory([]features.Definition{{Name: "x", Entity: features.Paths{"card.nope"}, Aggregate: features.Count, Window: "1h"}}, nil)
	if err == nil {
		t.Fatal("NewMemory accepted an unknown entity path")
	}
}

// TestMemoryMatchesStore feeds the same decided payments to the in-memory
// calculator and to a real Badger store and checks every feature value a
// payment sees is identical: Memory reuses the store's window logic.
func TestMemoryMatchesStore(t *testing.T) {
	defs, err := features.ParseDefinitions(features.Sample())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store := features.New(features.Options{Dir: t.TempDir(), CompileFilter: memCompileFilter})
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close(context.Background()) })
	if err := store.SetDefinitions(ctx, defs); err != nil {
		t.Fatal(err)
	}
	mem, err := features.NewMemory(defs, memCompileFilter)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	at := time.Duration(0)
	for i := range 400 {
		at += time.Duration(rng.IntN(600)) * time.Second
		p := memPay(fmt.Sprint("tx", i), at, fmt.Sprint("card", rng.IntN(8)), fmt.Sprint("acc", rng.IntN(12)), int64(100+rng.IntN(50000)))
		p.Device = engine.Device{ID: fmt.Sprint("dev", rng.IntN(6)), IP: fmt.Sprint("10.0.0.", rng.IntN(5))}
		p.Merchant = engine.Merchant{ID: fmt.Sprint("m", rng.IntN(3))}
		got, want := memValues(t, mem, p), memValues(t, store, p)
		for name, w := range want {
			if got[name] != w {
				t.Fatalf("payment %d: %s = %v in memory, %v in the store", i, name, got[name], w)
			}
		}
		outcome := []engine.Outcome{engine.Allow, engine.Challenge, engine.Deny}[rng.IntN(3)]
		rec := &engine.Record{Decision: engine.Decision{ID: fmt.Sprint("dec", i), TransactionID: p.TransactionID, Outcome: outcome, EvaluatedAt: p.OccurredAt}, Payment: p}
		if err := store.Commit(ctx, rec); err != nil {
			t.Fatal(err)
		}
		mem.Apply(rec)
	}
}
