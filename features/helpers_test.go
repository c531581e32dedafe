package features_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
)

func compileFilter(src string) (features.Filter, error) {
	p, err := rules.CompilePredicate(src)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// openStore opens a Store in dir with defs, closed at the end of the test.
func openStore(tb testing.TB, dir string, defs []features.Definition, opts ...func(*features.Options)) *features.Store {
	tb.Helper()
	o := features.Options{Dir: dir, CompileFilter: compileFilter, FlushInterval: 50 * time.Millisecond}
	for _, f := range opts {
		f(&o)
	}
	s := features.New(o)
	if err := s.Open(context.Background()); err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	if defs != nil {
		if err := s.SetDefinitions(context.Background(), defs); err != nil {
			tb.Fatalf("set definitions: %v", err)
		}
		waitReady(tb, s, defs)
	}
	return s
}

func waitReady(tb testing.TB, s *features.Store, defs []features.Definition) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, d := range defs {
		for {
			st, ok := s.Status(d.Name)
			if !ok || st.Done {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("backfill of %s did not finish", d.Name)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

var txCounter atomic.Int64

// record builds a decided payment.
func record(p engine.Payment, outcome engine.Outcome) *engine.Record {
	if p.TransactionID == "" {
		p.TransactionID = fmt.Sprintf("tx_%d", txCounter.Add(1))
	}
	if p.Currency == "" {
		p.Currency = "USD"
	}
	if p.Amount == 0 {
		p.Amount = 100
	}
	rec := &engine.Record{Payment: p, RequestHash: p.ContentHash()}
	rec.ID = engine.DecisionID(p.TransactionID)
	rec.TransactionID = p.TransactionID
	rec.Outcome = outcome
	rec.EvaluatedAt = p.OccurredAt
	return rec
}

func commit(tb testing.TB, s *features.Store, rec *engine.Record) {
	tb.Helper()
	if err := s.Commit(context.Background(), rec); err != nil {
		tb.Fatalf("commit: %v", err)
	}
}

// value reads one feature for p.
func value(tb testing.TB, s *features.Store, p engine.Payment, name string) float64 {
	tb.Helper()
	vals, err := s.Features(context.Background(), &p, nil)
	if err != nil {
		tb.Fatalf("features: %v", err)
	}
	for _, v := range vals {
		if v.Name == name {
			return v.Value
		}
	}
	tb.Fatalf("feature %s not found in %v", name, vals)
	return 0
}
