package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
)

// memStore is an in-memory DecisionStore counting commits.
type memStore struct {
	mu      sync.Mutex
	byTx    map[string]*engine.Record
	commits atomic.Int64
	fail    error
}

func newMemStore() *memStore { return &memStore{byTx: map[string]*engine.Record{}} }

func (m *memStore) Lookup(_ context.Context, tx string) (*engine.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.byTx[tx]; ok {
		return r, nil
	}
	return nil, engine.ErrNotFound
}

func (m *memStore) Commit(_ context.Context, rec *engine.Record) error {
	if m.fail != nil {
		return m.fail
	}
	// Simulated latency, not synchronisation: a commit that takes a while
	// keeps concurrent retries of one transaction overlapping it. Nothing
	// waits on it, and no result depends on how long it takes.
	time.Sleep(time.Millisecond)
	m.mu.Lock()
	defer m.mu.Unlock()
	if stored, ok := m.byTx[rec.TransactionID]; ok {
		return &engine.DuplicateError{Stored: stored}
	}
	m.byTx[rec.TransactionID] = rec
	rec.Seq = uint64(m.commits.Add(1))
	return nil
}

// funcRules is a RuleSet from a function.
type funcRules struct {
	version int64
	eval    func(ctx context.Context, in *engine.Input) []engine.RuleResult
}

func (f funcRules) Version() int64                { return f.version }
func (f funcRules) Thresholds() engine.Thresholds { return engine.Thresholds{Challenge: 40, Deny: 80} }
func (f funcRules) Evaluate(ctx context.Context, in *engine.Input, dst []engine.RuleResult) []engine.RuleResult {
	return append(dst, f.eval(ctx, in)...)
}

// funcFeatures is a FeatureSource from a function.
type funcFeatures func(ctx context.Context, p *engine.Payment) ([]engine.FeatureValue, error)

func (f funcFeatures) Features(ctx context.Context, p *engine.Payment, dst []engine.FeatureValue) ([]engine.FeatureValue, error) {
	v, err := f(ctx, p)
	return append(dst, v...), err
}

func denyOver(limit int64) funcRules {
	return funcRules{version: 7, eval: func(_ context.Context, in *engine.Input) []engine.RuleResult {
		return []engine.RuleResult{{RuleInfo: &engine.RuleInfo{ID: "big", Mode: engine.ModeActive, Action: engine.ActionDeny, Reason: "too_big"}, Matched: in.Payment.Amount > limit}}
	}}
}

func TestDecideIdempotent(t *testing.T) {
	store := newMemStore()
	e := engine.New(engine.Config{Store: store})
	e.SetRules(denyOver(1000))
	ctx := context.Background()
	p := validPayment()
	first, replayed, err := e.Decide(ctx, p, nil)
	if err != nil || replayed {
		t.Fatalf("first Decide = %v, replayed %v", err, replayed)
	}
	again, replayed, err := e.Decide(ctx, p, nil)
	if err != nil || !replayed {
		t.Fatalf("retry Decide = %v, replayed %v; want replayed", err, replayed)
	}
	if again.ID != first.ID {
		t.Errorf("retry got decision %s, want %s", again.ID, first.ID)
	}
	changed := p
	changed.Amount = 5000
	if _, _, err := e.Decide(ctx, changed, nil); !errors.Is(err, engine.ErrConflict) {
		t.Errorf("same id, different body: err = %v, want ErrConflict", err)
	}
	if n := store.commits.Load(); n != 1 {
		t.Errorf("commits = %d, want 1", n)
	}
}

func TestDecideConcurrentRetriesCommitOnce(t *testing.T) {
	store := newMemStore()
	e := engine.New(engine.Config{Store: store})
	e.SetRules(denyOver(1000))
	p := validPayment()
	var wg sync.WaitGroup
	ids := make([]string, 100)
	errs := make([]error, 100)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, _, err := e.Decide(context.Background(), p, nil)
			errs[i] = err
			if rec != nil {
				ids[i] = rec.ID
			}
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("request %d got decision %s, want %s", i, ids[i], ids[0])
		}
	}
	if n := store.commits.Load(); n != 1 {
		t.Errorf("commits = %d, want exactly 1", n)
	}
}

func TestDecideDegraded(t *testing.T) {
	slow := funcFeatures(func(ctx context.Context, _ *engine.Payment) ([]engine.FeatureValue, error) {
		<-ctx.Done()
		return nil, fmt.Errorf("read features: %w", ctx.Err())
	})
	failing := funcFeatures(func(context.Context, *engine.Payment) ([]engine.FeatureValue, error) {
		return nil, errors.New("disk on fire")
	})
	corrupt := funcFeatures(func(context.Context, *engine.Payment) ([]engine.FeatureValue, error) {
		return nil, fmt.Errorf("card fp_1: %w", engine.ErrCorrupt)
	})
	panicking := funcRules{version: 3, eval: func(context.Context, *engine.Input) []engine.RuleResult { panic("boom") }}
	tests := []struct {
		name       string
		cfg        engine.Config
		rules      engine.RuleSet
		merchant   string
		want       engine.Outcome
		wantCause  engine.Cause
		wantByRule bool
	}{
		{"slow features fall back", engine.Config{Features: slow, Budget: 5 * time.Millisecond, Fallback: engine.Challenge}, denyOver(1000), "", engine.Challenge, engine.CauseDeadline, false},
		{"failing features fall back", engine.Config{Features: failing, Fallback: engine.Deny}, denyOver(1000), "", engine.Deny, engine.CauseFeatureStoreUnavailable, false},
		{"merchant fallback wins", engine.Config{Features: failing, Fallback: engine.Deny, FallbackByMerchant: map[string]engine.Outcome{"m_safe": engine.Allow}}, denyOver(1000), "m_safe", engine.Allow, engine.CauseFeatureStoreUnavailable, false},
		{"no rules loaded", engine.Config{Fallback: engine.Challenge}, nil, "", engine.Challenge, engine.CauseNoRules, false},
		{"panicking rules", engine.Config{Fallback: engine.Challenge}, panicking, "", engine.Challenge, engine.CauseInternal, false},
		{"corrupt state falls back", engine.Config{Features: corrupt, Fallback: engine.Challenge}, denyOver(1000), "", engine.Challenge, engine.CauseStateCorrupt, false},
		{"stricter rule outcome kept", engine.Config{Features: failing, Fallback: engine.Allow}, denyOver(10), "", engine.Deny, engine.CauseFeatureStoreUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Store = newMemStore()
			e := engine.New(tt.cfg)
			if tt.rules != nil {
				e.SetRules(tt.rules)
			}
			p := validPayment()
			p.Merchant.ID = tt.merchant
			start := time.Now()
			rec, _, err := e.Decide(context.Background(), p, nil)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if time.Since(start) > 2*time.Second {
				t.Errorf("Decide took %v: the budget did not bound it", time.Since(start))
			}
			if !rec.Degraded || rec.DegradedCause != tt.wantCause {
				t.Errorf("degraded = %v cause %q, want true %q", rec.Degraded, rec.DegradedCause, tt.wantCause)
			}
			if rec.Outcome != tt.want {
				t.Errorf("outcome = %s, want %s", rec.Outcome, tt.want)
			}
			if byRule := rec.DeterminedBy == "rule:big"; byRule != tt.wantByRule {
				t.Errorf("determined by %q", rec.DeterminedBy)
			}
		})
	}
}

func TestDecideStoreFailureFallsBack(t *testing.T) {
	store := newMemStore()
	store.fail = errors.New("badger gone")
	var log bytes.Buffer
	e := engine.New(engine.Config{Store: store, Fallback: engine.Challenge, Log: slog.New(slog.NewTextHandler(&log, nil))})
	e.SetRules(denyOver(1000))
	rec, _, err := e.Decide(context.Background(), validPayment(), nil)
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	if !rec.Degraded || rec.Outcome != engine.Challenge || rec.DegradedCause != engine.CauseDecisionStoreUnavailable {
		t.Errorf("got %s degraded=%v cause=%q, want challenge degraded by the store", rec.Outcome, rec.Degraded, rec.DegradedCause)
	}
	// The error is logged, not recorded: the record only has the code.
	if got := log.String(); !strings.Contains(got, "cause=decision_store_unavailable") || !strings.Contains(got, `err="decision store: badger gone"`) {
		t.Errorf("log = %q, want the cause code and the full error", got)
	}
}

func TestDecideInvalidStoresNothing(t *testing.T) {
	store := newMemStore()
	e := engine.New(engine.Config{Store: store})
	e.SetRules(denyOver(1000))
	p := validPayment()
	p.Currency = "ABC"
	if _, _, err := e.Decide(context.Background(), p, nil); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if n := store.commits.Load(); n != 0 {
		t.Errorf("commits = %d, want 0", n)
	}
}

func TestSetRulesSwapsForNextDecision(t *testing.T) {
	e := engine.New(engine.Config{Store: newMemStore()})
	e.SetRules(denyOver(1000))
	p := validPayment()
	p.Amount = 500
	rec, _, _ := e.Decide(context.Background(), p, nil)
	if rec.Outcome != engine.Allow || rec.RulesetVersion != 7 {
		t.Fatalf("got %s v%d", rec.Outcome, rec.RulesetVersion)
	}
	strict := denyOver(100)
	strict.version = 8
	e.SetRules(strict)
	p.TransactionID = "tx_2"
	rec, _, _ = e.Decide(context.Background(), p, nil)
	if rec.Outcome != engine.Deny || rec.RulesetVersion != 8 {
		t.Errorf("after swap got %s v%d, want deny v8", rec.Outcome, rec.RulesetVersion)
	}
}

// TestEvaluatorsBoundConcurrency: no more than Config.Evaluators decisions
// gather features and run rules at once; the rest wait and then decide.
// Three decisions are held inside their features until the test releases
// them, so the bound is full; a fourth must then wait until its context
// ends without being evaluated. The fourth's deadline only decides how long
// a correct engine makes the test wait: whatever it is, a correct engine
// passes, and one that lets the fourth in fails.
func TestEvaluatorsBoundConcurrency(t *testing.T) {
	var evaluating atomic.Int64
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	held := funcFeatures(func(ctx context.Context, _ *engine.Payment) ([]engine.FeatureValue, error) {
		evaluating.Add(1)
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil, nil
	})
	e := engine.New(engine.Config{Store: newMemStore(), Features: held, Evaluators: 3, Budget: time.Minute})
	e.SetRules(denyOver(1000))
	decide := func(ctx context.Context, i int) error {
		p := validPayment()
		p.TransactionID = fmt.Sprintf("tx_eval_%d", i)
		_, _, err := e.Decide(ctx, p, nil)
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	defer releaseAll()
	for i := range 3 {
		wg.Go(func() {
			if err := decide(context.Background(), i); err != nil {
				t.Error(err)
			}
		})
	}
	for range 3 {
		<-entered
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := decide(ctx, 3)
	if n := evaluating.Load(); n != 3 {
		t.Errorf("%d decisions evaluated at once, want 3", n)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("fourth decision while three are evaluated: err = %v, want it to wait until its deadline", err)
	}

	releaseAll()
	wg.Wait()
	for i := 4; i < 10; i++ { // the bound is free again
		if err := decide(context.Background(), i); err != nil {
			t.Fatalf("decision %d after the release: %v", i, err)
		}
	}
}
