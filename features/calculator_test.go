package features_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/limits"
)

// mixedDefs covers every aggregate, where filters, several entities and a
// composite one.
var mixedDefs = []features.Definition{
	{Name: "card_n_1h", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "1h"},
	{Name: "card_denies_24h", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "24h", Where: `decision == "deny"`},
	{Name: "card_devices_24h", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Distinct, Field: "device.id", Window: "24h"},
	{Name: "card_first_7d", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.FirstSeen, Window: "7d"},
	{Name: "acct_sum_24h", Entity: features.Paths{"account.id"}, Aggregate: features.Sum, Field: "amount", Window: "24h"},
	{Name: "acct_spent_24h", Entity: features.Paths{"account.id"}, Aggregate: features.Sum, Field: "amount", Window: "24h", Where: `decision != "deny"`},
	{Name: "acct_last_1h", Entity: features.Paths{"account.id"}, Aggregate: features.LastSeen, Window: "1h"},
	{Name: "acct_merch_avg_2h", Entity: features.Paths{"account.id", "merchant.id"}, Aggregate: features.Avg, Field: "amount", Window: "2h"},
	{Name: "acct_merch_max_2h", Entity: features.Paths{"account.id", "merchant.id"}, Aggregate: features.Max, Field: "amount", Window: "2h"},
	{Name: "device_min_30m", Entity: features.Paths{"device.id"}, Aggregate: features.Min, Field: "amount", Window: "30m"},
	{Name: "web_card_10m", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "10m", Where: `attributes.channel == "web"`},
}

// mixedStream returns n decided payments over a few hours before now, in
// time order but for a few late arrivals, with limits in USD so the daily
// spend counts them.
func mixedStream(n int, now time.Time) []*engine.Record {
	r := rand.New(rand.NewPCG(7, 11))
	at := now.Add(-6 * time.Hour)
	outcomes := []engine.Outcome{engine.Allow, engine.Allow, engine.Challenge, engine.Deny}
	var out []*engine.Record
	for i := range n {
		at = at.Add(time.Duration(r.IntN(120)) * time.Second)
		when := at
		if i%17 == 0 {
			when = at.Add(-time.Duration(r.IntN(1800)) * time.Second) // a late arrival
		}
		p := engine.Payment{
			TransactionID: fmt.Sprintf("tx_mixed_%d", i),
			OccurredAt:    when,
			Amount:        int64(100 + r.IntN(5000)),
			Currency:      "USD",
			Account:       engine.Account{ID: fmt.Sprintf("acc_%d", r.IntN(4))},
			Card:          engine.Card{Fingerprint: fmt.Sprintf("fp_%d", r.IntN(5))},
			Device:        engine.Device{ID: fmt.Sprintf("dev_%d", r.IntN(8))},
			Merchant:      engine.Merchant{ID: fmt.Sprintf("m_%d", r.IntN(3))},
		}
		if r.IntN(2) == 0 {
			p.Attributes = map[string]any{"channel": "web"}
		}
		if r.IntN(10) == 0 {
			p.Device.ID = "" // an absent entity
		}
		rec := record(p, outcomes[r.IntN(len(outcomes))])
		rec.Limits = engine.Limits{Entity: "account:" + p.Account.ID, Currency: "USD", BaseCurrency: "USD", Rate: 1}
		out = append(out, rec)
	}
	return out
}

// calcState is a Calculator with its states in a map: the smallest shared
// store.
type calcState struct {
	c      *features.Calculator
	states map[string][]byte
}

func (s *calcState) apply(tb testing.TB, rec *engine.Record) {
	tb.Helper()
	for _, k := range s.c.Keys(&rec.Payment, nil) {
		next, changed, err := s.c.Apply(k, s.states[k.Key], rec)
		if err != nil {
			tb.Fatalf("apply %s: %v", rec.TransactionID, err)
		}
		if changed {
			s.states[k.Key] = next
		}
	}
}

func (s *calcState) values(tb testing.TB, p *engine.Payment) []engine.FeatureValue {
	tb.Helper()
	keys := s.c.Keys(p, nil)
	states := make([][]byte, len(keys))
	for i, k := range keys {
		states[i] = s.states[k.Key]
	}
	vals, err := s.c.Values(p, keys, states, nil)
	if err != nil {
		tb.Fatalf("values: %v", err)
	}
	return vals
}

func newCalculator(tb testing.TB, defs []features.Definition) *features.Calculator {
	tb.Helper()
	c, err := features.NewCalculator(defs, features.CalculatorOptions{CompileFilter: compileFilter, LimitsEntity: limits.EntityAccount})
	if err != nil {
		tb.Fatalf("new calculator: %v", err)
	}
	return c
}

func TestCalculatorMatchesStore(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	s := openStore(t, t.TempDir(), mixedDefs, func(o *features.Options) { o.LimitsEntity = limits.EntityAccount })
	cs := &calcState{c: newCalculator(t, mixedDefs), states: map[string][]byte{}}
	stream := mixedStream(400, now)
	ctx := context.Background()
	for i, rec := range stream {
		want, err := s.Features(ctx, &rec.Payment, nil)
		if err != nil {
			t.Fatalf("store features: %v", err)
		}
		got := cs.values(t, &rec.Payment)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("payment %d: calculator gave\n%v\nstore gave\n%v", i, got, want)
		}
		// The daily spend is the visible acct_spent_24h by another name.
		if sk, ok := cs.c.SpentKey(&rec.Payment); ok {
			spent, err := cs.c.Spent(&rec.Payment, cs.states[sk.Key])
			if err != nil {
				t.Fatalf("spent: %v", err)
			}
			// Converted through the base currency: equal to a float's noise.
			if math.Abs(spent-want[5].Value) > 1e-6 {
				t.Fatalf("payment %d: spent %v, want %v", i, spent, want[5].Value)
			}
		}
		commit(t, s, rec)
		cs.apply(t, rec)
	}
	nonZero := 0
	for _, v := range cs.values(t, &engine.Payment{OccurredAt: now, Account: engine.Account{ID: "acc_1"}, Card: engine.Card{Fingerprint: "fp_1"}, Merchant: engine.Merchant{ID: "m_1"}, Device: engine.Device{ID: "dev_1"}}) {
		if v.Value > 0 {
			nonZero++
		}
	}
	if nonZero < 8 {
		t.Errorf("only %d features non-zero at the end: the stream does not exercise them", nonZero)
	}
}

func TestCalculatorGroupIDs(t *testing.T) {
	base := newCalculator(t, mixedDefs)
	ids := func(c *features.Calculator) map[string]string {
		m := map[string]string{}
		for _, g := range c.Groups() {
			m[g.Spec] = g.ID
		}
		return m
	}
	before := ids(base)
	if len(before) != 4 {
		t.Fatalf("groups = %v, want 4 specs", before)
	}
	changed := append([]features.Definition(nil), mixedDefs...)
	changed[4].Window = "12h" // acct_sum_24h
	changed[0], changed[1] = changed[1], changed[0]
	after := ids(newCalculator(t, changed))
	for spec, id := range before {
		if spec == "account.id" {
			if after[spec] == id {
				t.Errorf("group %s kept ID %s after a definition changed", spec, id)
			}
			continue
		}
		if after[spec] != id {
			t.Errorf("group %s: ID %s became %s though no definition changed", spec, id, after[spec])
		}
	}
	if got, want := base.Longest(), 7*24*time.Hour+2*features.BucketSize(7*24*time.Hour); got != want {
		t.Errorf("Longest = %v, want %v", got, want)
	}
}

func TestCalculatorCorruptState(t *testing.T) {
	c := newCalculator(t, mixedDefs)
	p := engine.Payment{OccurredAt: time.Now(), Account: engine.Account{ID: "a"}, Card: engine.Card{Fingerprint: "f"}}
	keys := c.Keys(&p, nil)
	states := make([][]byte, len(keys))
	corrupt := -1
	for i, k := range keys {
		if c.Groups()[k.Group].Spec == "card.fingerprint" {
			states[i], corrupt = []byte{9, 9, 9}, i
		}
	}
	vals, err := c.Values(&p, keys, states, nil)
	if !errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	if corrupt < 0 {
		t.Fatal("no card key")
	}
	for _, v := range vals {
		card := v.Name[:4] == "card" || v.Name == "web_card_10m"
		if v.Ready == card {
			t.Errorf("%s ready = %v, want %v", v.Name, v.Ready, !card)
		}
	}
	if _, _, err := c.Apply(keys[corrupt], states[corrupt], record(p, engine.Allow)); !errors.Is(err, engine.ErrCorrupt) {
		t.Errorf("apply on a corrupt state: err = %v, want ErrCorrupt", err)
	}
	other := engine.Payment{OccurredAt: p.OccurredAt, Card: engine.Card{Fingerprint: "g"}}
	if _, _, err := c.Apply(keys[corrupt], nil, record(other, engine.Allow)); err == nil {
		t.Error("apply of another entity's record: no error")
	}
}

// lateLabelDefs read labels, which arrive after the decision.
var lateLabelDefs = []features.Definition{
	{Name: "card_chargebacks_90d", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "90d", Where: `"chargeback" in labels`},
	{Name: "card_bad_90d", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "90d", Where: `decision == "deny" || "fraud" in labels`},
	{Name: "card_n_90d", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "90d"},
}

func TestCalculatorLabelsMatchStore(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	s := openStore(t, t.TempDir(), lateLabelDefs)
	cs := &calcState{c: newCalculator(t, lateLabelDefs), states: map[string][]byte{}}
	ctx := context.Background()
	stream := mixedStream(60, now)
	for _, rec := range stream {
		commit(t, s, rec)
		cs.apply(t, rec)
	}
	labels := []string{"chargeback", "fraud", "other", "chargeback", "fraud"}
	for i, rec := range stream {
		if i%3 != 0 {
			continue
		}
		for _, l := range labels[:1+i%len(labels)] {
			labelled, added, err := s.AddLabel(ctx, rec.ID, engine.Label{Label: l, CreatedAt: now})
			if err != nil {
				t.Fatal(err)
			}
			if !added {
				continue
			}
			// What the state held: the decision with its earlier labels.
			counted := []int{len(labelled.Labels) - 1}
			for _, k := range cs.c.Keys(&labelled.Payment, nil) {
				next, changed, err := cs.c.ApplyCounted(k, cs.states[k.Key], []*engine.Record{labelled}, counted)
				if err != nil {
					t.Fatal(err)
				}
				if changed {
					cs.states[k.Key] = next
				}
			}
		}
	}
	nonZero := 0
	for i := range 5 {
		p := engine.Payment{OccurredAt: now, Card: engine.Card{Fingerprint: fmt.Sprintf("fp_%d", i)}}
		want, err := s.Features(ctx, &p, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := cs.values(t, &p)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("card fp_%d: calculator gave\n%v\nstore gave\n%v", i, got, want)
		}
		nonZero += int(want[0].Value)
	}
	if nonZero == 0 {
		t.Error("no chargeback counted: the test labels nothing")
	}
}

// FuzzCalculatorState feeds arbitrary bytes as a stored state: reading
// never panics, and a state that does not decode reads not ready with
// ErrCorrupt and is never overwritten, while one that does decode takes a
// new decision.
func FuzzCalculatorState(f *testing.F) {
	c, err := features.NewCalculator(mixedDefs[:4], features.CalculatorOptions{CompileFilter: compileFilter})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0).UTC()
	p := engine.Payment{OccurredAt: now, Card: engine.Card{Fingerprint: "f"}, Device: engine.Device{ID: "d"}}
	key := c.Keys(&p, nil)[0]
	var state []byte
	for i := range 3 {
		p.TransactionID = fmt.Sprintf("tx_fuzz_%d", i)
		state, _, _ = c.Apply(key, state, record(p, engine.Deny))
	}
	f.Add(state)
	f.Add([]byte{})
	f.Add([]byte{1, 1, 3, 'a', 'b', 'c', 0})
	f.Fuzz(func(t *testing.T, state []byte) {
		vals, err := c.Values(&p, []features.StateKey{key}, [][]byte{state}, nil)
		corrupt := errors.Is(err, engine.ErrCorrupt)
		if err != nil && !corrupt {
			t.Fatalf("values: %v", err)
		}
		for _, v := range vals {
			if v.Ready == corrupt {
				t.Fatalf("%s ready = %v with err %v", v.Name, v.Ready, err)
			}
		}
		p.TransactionID = "tx_fuzz_next"
		next, changed, err := c.Apply(key, state, record(p, engine.Allow))
		if corrupt != (err != nil) {
			t.Fatalf("apply: err %v, values err corrupt %v", err, corrupt)
		}
		if corrupt {
			if changed || string(next) != string(state) {
				t.Fatal("a corrupt state was overwritten")
			}
			return
		}
		if _, err := c.Values(&p, []features.StateKey{key}, [][]byte{next}, nil); err != nil {
			t.Fatalf("state written by Apply does not read: %v", err)
		}
	})
}
