package features

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/rules"
)

// BenchmarkReadUpdate12 is the feature work of one decision without the
// decision log: read the 12 sample features for a payment, then record the
// decided payment into them (what the committer does after the Badger
// write). "hot" keeps every entity in the cache; "cold" gives the cache
// room for a tenth of them, so most reads load a window from Badger.
// Run with -benchtime=200000x for stable percentiles.
func BenchmarkReadUpdate12(b *testing.B) {
	for _, tc := range []struct {
		name     string
		entities int
		cache    int
	}{
		{"hot", 2_000, DefaultCacheEntries},
		{"cold", 50_000, 30_000},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := benchStore(b, tc.cache)
			now := time.Now()
			// Warm up: every entity has history in Badger and, if it fits,
			// in the cache.
			for i := range tc.entities {
				s.readUpdate(b, benchPayment(i, tc.entities, now), nil)
			}
			if err := s.flush(); err != nil {
				b.Fatal(err)
			}
			vals := make([]engine.FeatureValue, 0, 16)
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				p := benchPayment(tc.entities+i, tc.entities, now)
				start := time.Now()
				vals = s.readUpdate(b, p, vals[:0])
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			if len(vals) != 12 {
				b.Fatalf("read %d features, want 12", len(vals))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
			hits, misses := s.ws.hits.Load(), s.ws.misses.Load()
			b.ReportMetric(float64(hits)/float64(hits+misses), "hit-ratio")
		})
	}
}

func (s *Store) readUpdate(b *testing.B, p engine.Payment, vals []engine.FeatureValue) []engine.FeatureValue {
	vals, err := s.Features(context.Background(), &p, vals)
	if err != nil {
		b.Fatal(err)
	}
	rec := &engine.Record{Payment: p}
	rec.Outcome = engine.Allow
	s.applyMu.Lock()
	s.apply(rec, s.defs.Load())
	s.applyMu.Unlock()
	return vals
}

func benchStore(b *testing.B, cache int) *Store {
	b.Helper()
	s := New(Options{
		Dir: b.TempDir(), CacheEntries: cache, FlushInterval: time.Hour,
		CompileFilter: func(src string) (Filter, error) { return rules.CompilePredicate(src) },
	})
	if err := s.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close(context.Background()) })
	defs, err := ParseDefinitions(Sample())
	if err != nil {
		b.Fatal(err)
	}
	if err := s.SetDefinitions(context.Background(), defs); err != nil {
		b.Fatal(err)
	}
	// Poll until every backfill is done; the deadline fails a stuck one.
	deadline := time.Now().Add(time.Minute)
	for _, d := range defs {
		for st, ok := s.Status(d.Name); ok && !st.Done; st, ok = s.Status(d.Name) {
			if time.Now().After(deadline) {
				b.Fatalf("backfill of %s did not finish", d.Name)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return s
}

// benchPayment spreads payments over n cards, accounts, devices and IPs.
func benchPayment(i, n int, now time.Time) engine.Payment {
	id := strconv.Itoa(i % n)
	return engine.Payment{
		TransactionID: "tx_" + strconv.Itoa(i), OccurredAt: now.Add(time.Duration(i) * time.Millisecond),
		Amount: int64(1000 + i%5000), Currency: "USD",
		Account:  engine.Account{ID: "acc_" + id, Email: "u" + id + "@example.com", Country: "US"},
		Card:     engine.Card{Fingerprint: "fp_" + id, BIN: "411111", Country: "US"},
		Device:   engine.Device{ID: "dev_" + id, IP: "10.0." + strconv.Itoa(i%n/256) + "." + strconv.Itoa(i%256), IPCountry: "US"},
		Merchant: engine.Merchant{ID: "m_" + strconv.Itoa(i%50), MCC: "5999", Country: "US"},
	}
}
