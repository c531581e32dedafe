package review_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/kv"
)

// BenchmarkSync is the queue's cost per decision read from the log (none
// needs review, the usual case): the background reader decodes every
// record once. Reported as ns/decision.
func BenchmarkSync(b *testing.B) {
	s := newStack(b)
	ctx := context.Background()
	const n = 2000
	for range n {
		body, err := json.Marshal(s.pay("acc_b", "fp_b", 1_000, "USD"))
		if err != nil {
			b.Fatal(err)
		}
		p, err := engine.DecodePayment(body)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.engine.Decide(ctx, p, body); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		// Rewind the cursor (key rq/cursor, see keys.go) to read it all again.
		if err := kv.Set(ctx, s.store.KV(), []byte("rq/cursor"), binary.BigEndian.AppendUint64(nil, 0)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if opened, err := s.queue.Sync(ctx); err != nil || opened != 0 {
			b.Fatalf("sync: %d, %v", opened, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/decision")
}
