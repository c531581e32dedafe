package redisstate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
)

// BenchmarkDecision is the feature work of one decision in cluster mode:
// Features, then Record, for payments over 1000 cards and 100 accounts,
// with the ten mixed features. It reports the Redis round trips per
// decision (the target is three: one read, one read and one write).
func BenchmarkDecision(b *testing.B) {
	c, rt := newClient(b)
	s := newState(b, c, newPrefix(b, c), mixedDefs)
	built(b, s)
	ctx := context.Background()
	now := time.Now().UTC()
	recs := make([]*engine.Record, 4096)
	for i := range recs {
		recs[i] = record(engine.Payment{
			OccurredAt: now, Amount: int64(100 + i%50),
			Account:  engine.Account{ID: fmt.Sprintf("acc_%d", i%100)},
			Card:     engine.Card{Fingerprint: fmt.Sprintf("fp_%d", i%1000)},
			Device:   engine.Device{ID: fmt.Sprintf("dev_%d", i%300)},
			Merchant: engine.Merchant{ID: fmt.Sprintf("m_%d", i%10)},
		}, engine.Allow)
	}
	var vals []engine.FeatureValue
	before := rt.n.Load()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		rec := recs[i%len(recs)]
		rec.TransactionID = fmt.Sprintf("tx_bench_%d", i)
		var err error
		if vals, err = s.Features(ctx, &rec.Payment, vals[:0]); err != nil {
			b.Fatal(err)
		}
		if err := s.Record(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(rt.n.Load()-before)/float64(b.N), "roundtrips/op")
	if len(vals) != len(mixedDefs) || !vals[0].Ready {
		b.Fatalf("last values %v", vals)
	}
}
