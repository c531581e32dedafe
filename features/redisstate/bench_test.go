package redisstate_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
)

// BenchmarkDecision is the feature work of one decision in cluster mode:
// Features, then Record, for payments over 1000 cards and 100 accounts,
// with the ten mixed features. It reports the Redis round trips per
// decision (three: the read of Features, then Record's read and its
// write, each one GET or one script call per entity state: no key per
// transaction) and the keys Redis holds at the end, which depend on the
// entities only (at most 1000 cards, 100 accounts, 300 devices, 1000
// account and merchant pairs, and the built marks), not on b.N.
func BenchmarkDecision(b *testing.B) {
	c, rt := newClient(b)
	prefix := newPrefix(b, c)
	s := newState(b, c, prefix, mixedDefs)
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
	b.ReportMetric(float64(len(stateSizes(b, c, prefix))), "keys")
	if len(vals) != len(mixedDefs) || !vals[0].Ready {
		b.Fatalf("last values %v", vals)
	}
}

// BenchmarkDecisionParallel is BenchmarkDecision from many goroutines at
// once on one node, over 1000 cards: the throughput of one node.
func BenchmarkDecisionParallel(b *testing.B) {
	c, _ := newClient(b)
	s := newState(b, c, newPrefix(b, c), mixedDefs)
	built(b, s)
	ctx := context.Background()
	now := time.Now().UTC()
	var seq atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var vals []engine.FeatureValue
		for pb.Next() {
			i := seq.Add(1)
			rec := record(engine.Payment{
				TransactionID: fmt.Sprintf("tx_par_%d", i), OccurredAt: now, Amount: 100,
				Account: engine.Account{ID: fmt.Sprintf("acc_%d", i%100)},
				Card:    engine.Card{Fingerprint: fmt.Sprintf("fp_%d", i%1000)},
			}, engine.Allow)
			var err error
			if vals, err = s.Features(ctx, &rec.Payment, vals[:0]); err != nil {
				b.Error(err)
				return
			}
			if err := s.Record(ctx, rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	probe := engine.Payment{OccurredAt: now.Add(time.Second), Card: engine.Card{Fingerprint: "fp_1"}}
	if v := value(b, s, probe, "card_n_1h"); int64(v.Value) != (seq.Load()+999)/1000 {
		b.Fatalf("fp_1 counted %v of %d decisions", v.Value, (seq.Load()+999)/1000)
	}
}
