package backtest_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
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

// gated is a History whose scans pause while its gate is closed, so a
// backtest can be switched on and off between measurements.
type gated struct {
	backtest.History
	mu      sync.Mutex
	open    *sync.Cond
	on      bool
	passed  atomic.Int64 // records read while on
	waiting atomic.Int64 // scans held at the gate
}

func newGated(h backtest.History) *gated {
	g := &gated{History: h}
	g.open = sync.NewCond(&g.mu)
	return g
}

func (g *gated) set(on bool) {
	g.mu.Lock()
	g.on = on
	g.mu.Unlock()
	g.open.Broadcast()
}

// waitFor polls cond until it holds; the deadline fails the benchmark.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func (g *gated) ScanRecords(ctx context.Context, from uint64, fn func(*engine.Record) error) error {
	return g.History.ScanRecords(ctx, from, func(r *engine.Record) error {
		g.mu.Lock()
		if !g.on && ctx.Err() == nil {
			g.waiting.Add(1)
			for !g.on && ctx.Err() == nil {
				g.open.Wait()
			}
			g.waiting.Add(-1)
		}
		g.mu.Unlock()
		g.passed.Add(1)
		return fn(r)
	})
}

// BenchmarkLiveDuringBacktest measures the latency of live decisions in
// alternating blocks of 100: with nothing else running, then while a
// backtest of the whole history replays (with the default Config), and
// reports the p50 and p99 of each, the p99 ratio (the target is at most
// 2) and the backtest's speed meanwhile. Alternating blocks keep other load on the machine from landing on
// one side only. A benchmark, not a timed assertion.
//
//	go test ./admin/backtest -run '^$' -bench LiveDuringBacktest -benchtime 4000x
func BenchmarkLiveDuringBacktest(b *testing.B) {
	l := seedHistory(b)
	spec := l.engine.Rules().(*rules.Set).Spec()
	req := backtest.Request{Candidate: backtest.Candidate{Spec: &spec}, From: t0, To: t0.Add(2 * 365 * 24 * time.Hour)}
	history := newGated(l.store)
	bt := backtest.New(backtest.Config{History: history, Env: l.env})
	f, err := os.Open(datasetPath)
	if err != nil {
		b.Fatal(err)
	}
	events, err := backtest.ReadEvents(f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { // backtests back to back, as the API runs them
		for ctx.Err() == nil {
			st, err := bt.Start(ctx, req)
			if err != nil {
				b.Error(err)
				return
			}
			// Poll the job until it ends (or the benchmark does); the
			// deadline fails one that hangs.
			deadline := time.Now().Add(10 * time.Minute)
			for ctx.Err() == nil && (st.State == backtest.StateQueued || st.State == backtest.StateRunning) {
				if time.Now().After(deadline) {
					b.Errorf("backtest still %s after 10 minutes", st.State)
					return
				}
				time.Sleep(10 * time.Millisecond)
				st, _ = bt.Get(st.ID)
			}
		}
	})
	history.set(true)
	waitFor(b, "the backtest reads the history", func() bool { return history.passed.Load() > 0 })
	history.set(false)

	var idle, busy []time.Duration
	var busyTime time.Duration
	passed := history.passed.Load()
	n := 0
	for b.Loop() {
		n++
		on := (n/100)%2 == 1
		if n%100 == 0 {
			// Each block starts with the backtest in the state it is
			// measured in: reading again, or held at the gate.
			before := history.passed.Load()
			history.set(on)
			if on {
				waitFor(b, "the backtest resumes", func() bool { return history.passed.Load() > before })
			} else {
				waitFor(b, "the backtest stops at the gate", func() bool { return history.waiting.Load() > 0 })
			}
		}
		p := events[n%len(events)].Payment
		p.TransactionID = fmt.Sprintf("live-%d", n)
		start := time.Now()
		if _, _, err := l.engine.Decide(context.Background(), p, nil); err != nil {
			b.Fatal(err)
		}
		if on {
			busyTime += time.Since(start)
			busy = append(busy, time.Since(start))
		} else {
			idle = append(idle, time.Since(start))
		}
	}
	passed = history.passed.Load() - passed
	cancel()
	history.set(true)
	wg.Wait()
	if err := bt.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	pct := func(d []time.Duration, q int) time.Duration {
		slices.Sort(d)
		return d[len(d)*q/100]
	}
	if len(idle) == 0 || len(busy) == 0 {
		b.Fatal("run at least 200 decisions (-benchtime 4000x)")
	}
	b.ReportMetric(float64(pct(idle, 50).Microseconds()), "idle-p50-µs")
	b.ReportMetric(float64(pct(idle, 99).Microseconds()), "idle-p99-µs")
	b.ReportMetric(float64(pct(busy, 50).Microseconds()), "busy-p50-µs")
	b.ReportMetric(float64(pct(busy, 99).Microseconds()), "busy-p99-µs")
	b.ReportMetric(float64(pct(busy, 99))/float64(pct(idle, 99)), "p99-ratio")
	b.ReportMetric(float64(passed)/busyTime.Seconds(), "replayed/s")
}
