package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkDecisionsCommit commits full records from parallel committers
// (GOMAXPROCS×8 goroutines, as concurrent requests would) and reports the
// mean batch size the group commit reached.
func BenchmarkDecisionsCommit(b *testing.B) {
	d, _ := newLog(b)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := fullRecord(fmt.Sprintf("tx_bench_%d", n.Add(1)), jan2026)
			if err := d.Commit(ctx, rec); err != nil {
				b.Errorf("commit: %v", err)
				return
			}
		}
	})
	b.StopTimer()
	st := d.Stats()
	if st.Failed != 0 || st.Duplicates != 0 {
		b.Fatalf("stats %+v: want no failures or duplicates", st)
	}
	if c, err := d.Count(ctx); err != nil || c != n.Load() {
		b.Fatalf("count %d, %v; want %d", c, err, n.Load())
	}
	b.ReportMetric(float64(st.Commits)/float64(st.Batches), "commits/batch")
}
