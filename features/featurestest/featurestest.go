// Package featurestest opens real feature stores for the tests of the
// packages around package features: a Badger store in the test's temporary
// directory, filters compiled by the rules package, definitions backfilled
// before the test goes on. Test code only.
package featurestest

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

// CompileFilter compiles a feature filter with the rules package, as the
// service does.
func CompileFilter(src string) (features.Filter, error) {
	p, err := rules.CompilePredicate(src)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Open opens a Store with o, closed when the test ends. An empty Dir is a
// new temporary directory; CompileFilter and FlushInterval (50 ms) are set
// when zero. With defs, it sets them and waits for their backfills.
func Open(tb testing.TB, o features.Options, defs []features.Definition) *features.Store {
	tb.Helper()
	if o.Dir == "" {
		o.Dir = tb.TempDir()
	}
	if o.CompileFilter == nil {
		o.CompileFilter = CompileFilter
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = 50 * time.Millisecond
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
		WaitReady(tb, s, defs)
	}
	return s
}

// WaitReady waits until the backfills of defs are done (the store has no
// other signal than its status), failing the test after 10 s.
func WaitReady(tb testing.TB, s *features.Store, defs []features.Definition) {
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

// Record builds the record of p decided as outcome: a transaction id,
// USD and an amount of 100 when p has none.
func Record(p engine.Payment, outcome engine.Outcome) *engine.Record {
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

// Commit commits rec to s, failing the test on an error.
func Commit(tb testing.TB, s *features.Store, rec *engine.Record) {
	tb.Helper()
	if err := s.Commit(context.Background(), rec); err != nil {
		tb.Fatalf("commit: %v", err)
	}
}
