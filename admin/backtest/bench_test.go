package backtest_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/admin/backtest"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
)

// benchRecords is the size of the history the benchmarks replay.
const benchRecords = 20_000

// seedHistory decides benchRecords payments of the synthetic data set
// (repeated with fresh ids) on a live path with the sample rules and
// features, from several goroutines, with the clock fixed at t0.
func seedHistory(b *testing.B) *live {
	b.Helper()
	defs, err := features.ParseDefinitions(features.Sample())
	if err != nil {
		b.Fatal(err)
	}
	file, err := rules.ParseFile(rules.Sample())
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(datasetPath)
	if err != nil {
		b.Fatal(err)
	}
	events, err := backtest.ReadEvents(f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	l := newLive(b, defs, file.Spec)
	l.clock.Store(t0.Add(365 * 24 * time.Hour).UnixNano())
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				p := events[i%len(events)].Payment
				p.TransactionID = fmt.Sprintf("%s-%d", p.TransactionID, i)
				if _, _, err := l.engine.Decide(context.Background(), p, nil); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range benchRecords {
		work <- i
	}
	close(work)
	wg.Wait()
	return l
}

// memoryHistory serves decoded records from memory: replaying it measures
// the backtest without the store's decoding.
type memoryHistory []*engine.Record

func (m memoryHistory) ScanRecords(ctx context.Context, from uint64, fn func(*engine.Record) error) error {
	i, _ := slices.BinarySearchFunc(m, from, func(r *engine.Record, s uint64) int { return int(r.Seq) - int(s) })
	for ; i < len(m); i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(m[i]); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkBacktestReplay measures replayed decisions per second on one
// goroutine (one core): "scan" only reads and decodes the stored records,
// "evaluate" replays records already decoded in memory, "replay" is a
// whole backtest of the stored history, the sample rule set changed.
//
//	go test ./admin/backtest -run '^$' -bench BacktestReplay -benchtime 5x
func BenchmarkBacktestReplay(b *testing.B) {
	l := seedHistory(b)
	ctx := context.Background()
	spec := l.engine.Rules().(*rules.Set).Spec()
	spec.ChallengeThreshold = 30 // the candidate: challenge from a score of 30
	req := backtest.Request{Candidate: backtest.Candidate{Spec: &spec}, From: t0, To: t0.Add(2 * 365 * 24 * time.Hour)}
	perRecord := func(b *testing.B, n int) {
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*b.N), "ns/record")
	}

	b.Run("scan", func(b *testing.B) {
		n := 0
		for b.Loop() {
			n = 0
			if err := l.store.ScanRecords(ctx, 1, func(*engine.Record) error { n++; return nil }); err != nil {
				b.Fatal(err)
			}
		}
		if n != benchRecords {
			b.Fatalf("scanned %d records, want %d", n, benchRecords)
		}
		perRecord(b, n)
	})

	var decoded memoryHistory
	if err := l.store.ScanRecords(ctx, 1, func(r *engine.Record) error { decoded = append(decoded, r); return nil }); err != nil {
		b.Fatal(err)
	}
	for name, h := range map[string]backtest.History{"evaluate": decoded, "replay": l.store} {
		b.Run(name, func(b *testing.B) {
			bt := backtest.New(backtest.Config{History: h, Env: l.env})
			var res *backtest.Result
			for b.Loop() {
				var err error
				if res, err = bt.Run(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			if res.Replayed != benchRecords || res.Changed == 0 {
				b.Fatalf("replayed %d, changed %d", res.Replayed, res.Changed)
			}
			perRecord(b, benchRecords)
		})
	}
}

// BenchmarkLiveDuringBacktest measures the p99 latency of live decisions,
// first with nothing else running, then while backtests of the whole
// history run back to back; it reports both and their ratio (the target is
// at most 2). A benchmark, not a timed assertion: run it on a quiet
// machine.
//
//	go test ./admin/backtest -run '^$' -bench LiveDuringBacktest -benchtime 3000x
func BenchmarkLiveDuringBacktest(b *testing.B) {
	l := seedHistory(b)
	spec := l.engine.Rules().(*rules.Set).Spec()
	req := backtest.Request{Candidate: backtest.Candidate{Spec: &spec}, From: t0, To: t0.Add(2 * 365 * 24 * time.Hour)}
	bt := backtest.New(backtest.Config{History: l.store, Env: l.env})
	f, err := os.Open(datasetPath)
	if err != nil {
		b.Fatal(err)
	}
	events, err := backtest.ReadEvents(f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	serial := 0
	measure := func(b *testing.B) time.Duration {
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			serial++
			p := events[serial%len(events)].Payment
			p.TransactionID = fmt.Sprintf("live-%d", serial)
			start := time.Now()
			if _, _, err := l.engine.Decide(context.Background(), p, nil); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		p99 := lat[len(lat)*99/100]
		b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		return p99
	}
	var idle time.Duration
	b.Run("idle", func(b *testing.B) { idle = measure(b) })
	b.Run("backtest", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		runs := 0
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := bt.Run(ctx, req); err == nil {
					runs++
				}
			}
		})
		runtime.Gosched()
		p99 := measure(b)
		cancel()
		wg.Wait()
		b.ReportMetric(float64(runs), "backtests")
		if idle > 0 {
			b.ReportMetric(float64(p99)/float64(idle), "p99-ratio")
		}
	})
}
