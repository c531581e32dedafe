package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Config.
const (
	DefaultBudget       = 50 * time.Millisecond
	DefaultCommitBudget = 2 * time.Second
	DefaultFallback     = Challenge
)

// Config configures an Engine. Zero fields take the defaults above.
type Config struct {
	// Store keeps decisions; required.
	Store DecisionStore
	// Features reads behavioural features; nil means no features.
	Features FeatureSource
	// Limiter computes dynamic limits; nil means no limits.
	Limiter Limiter
	// Labels stores feedback labels; nil refuses feedback as unavailable.
	Labels Labeler
	// Trust applies the effects of feedback labels; nil means labels are
	// only stored.
	Trust TrustUpdater
	// Observer is told about every decision; nil means none.
	Observer Observer
	// Budget is the time a decision may spend gathering features and
	// limits, and again running rules. Past it the engine decides with
	// what it has and marks the decision degraded.
	Budget time.Duration
	// CommitBudget bounds the durable write of a decision record.
	CommitBudget time.Duration
	// Evaluators bounds how many decisions gather features and run rules at
	// once; zero means eight times GOMAXPROCS. The others wait their turn,
	// parked: with every request runnable at once, the store's committer
	// (a single goroutine) waited behind all of them for a processor, and
	// under load each group commit took milliseconds longer than its work
	// (docs/performance.md).
	Evaluators int
	// Fallback is the least strict outcome a degraded decision may have.
	Fallback Outcome
	// FallbackByMerchant overrides Fallback per merchant id.
	FallbackByMerchant map[string]Outcome
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives what cannot be returned, such as a recovered panic's
	// stack; nil discards.
	Log *slog.Logger
}

// Observer receives every decision after it is made, for metrics. It must
// be fast and safe for concurrent use.
type Observer interface {
	ObserveDecision(rec *Record, elapsed time.Duration)
}

// Engine decides payments. It is safe for concurrent use.
type Engine struct {
	cfg   Config
	rules atomic.Pointer[ruleSlot]

	mu       sync.Mutex
	inflight map[string]chan struct{} // transaction id -> closed when done

	evaluators chan struct{} // a token per decision being evaluated
}

type ruleSlot struct{ set RuleSet }

// New returns an Engine for cfg. It does no I/O.
func New(cfg Config) *Engine {
	if cfg.Budget <= 0 {
		cfg.Budget = DefaultBudget
	}
	if cfg.CommitBudget <= 0 {
		cfg.CommitBudget = DefaultCommitBudget
	}
	if !cfg.Fallback.Valid() {
		cfg.Fallback = DefaultFallback
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Evaluators <= 0 {
		cfg.Evaluators = 8 * runtime.GOMAXPROCS(0)
	}
	return &Engine{cfg: cfg, inflight: make(map[string]chan struct{}), evaluators: make(chan struct{}, cfg.Evaluators)}
}

// SetRules makes rs the live rule set for every decision that starts after
// the call. Decisions already running finish on the set they started with.
func (e *Engine) SetRules(rs RuleSet) { e.rules.Store(&ruleSlot{set: rs}) }

// Rules returns the live rule set, or nil if none was set.
func (e *Engine) Rules() RuleSet {
	if s := e.rules.Load(); s != nil {
		return s.set
	}
	return nil
}

// Now returns the engine's clock reading.
func (e *Engine) Now() time.Time { return e.cfg.Now() }

// Decide screens one payment and returns its decision record. raw is the
// request body as received, kept for the explanation.
//
// A transaction id seen before returns the stored record with replayed set
// and is not counted again; the same id with different content returns an
// error wrapping ErrConflict. Invalid input returns a *FieldError and
// stores nothing.
func (e *Engine) Decide(ctx context.Context, p Payment, raw []byte) (rec *Record, replayed bool, err error) {
	now := e.cfg.Now()
	if err := p.Validate(now); err != nil {
		return nil, false, err
	}
	hash := p.ContentHash()

	// Concurrent requests for one transaction id wait for the first one,
	// then find its stored record. A transaction decided earlier is found
	// by the store when the decision is committed (see DuplicateError), so
	// a new transaction costs no read before it is decided.
	for {
		e.mu.Lock()
		wait, busy := e.inflight[p.TransactionID]
		if !busy {
			e.inflight[p.TransactionID] = make(chan struct{})
			e.mu.Unlock()
			break
		}
		e.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, false, fmt.Errorf("wait for concurrent request: %w", ctx.Err())
		}
		stored, err := e.cfg.Store.Lookup(ctx, p.TransactionID)
		switch {
		case err == nil:
			return replay(stored, hash)
		case !errors.Is(err, ErrNotFound):
			return nil, false, fmt.Errorf("look up transaction: %w", err)
		}
		// The first request's decision was not stored: decide afresh.
	}
	defer func() {
		e.mu.Lock()
		close(e.inflight[p.TransactionID])
		delete(e.inflight, p.TransactionID)
		e.mu.Unlock()
	}()

	if p.OccurredAt.IsZero() {
		p.OccurredAt = now
	}
	rec = &Record{Payment: p, Request: raw, RequestHash: hash}
	rec.ID = DecisionID(p.TransactionID)
	rec.TransactionID = p.TransactionID
	select {
	case e.evaluators <- struct{}{}:
	case <-ctx.Done():
		return nil, false, fmt.Errorf("wait to be evaluated: %w", ctx.Err())
	}
	err = e.evaluate(ctx, rec, now)
	<-e.evaluators
	if err != nil {
		return nil, false, err
	}

	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.CommitBudget)
	defer cancel()
	var dup *DuplicateError
	switch err := e.cfg.Store.Commit(cctx, rec); {
	case errors.As(err, &dup):
		return replay(dup.Stored, hash)
	case err != nil:
		// The decision could not be recorded: answer with the fallback so
		// the payment path still gets an answer, and say why. A retry is
		// decided afresh. The cause replaces an earlier one (markDegraded):
		// that it was not recorded is what the gateway must know.
		e.degrade(rec, CauseDecisionStoreUnavailable, fmt.Errorf("decision store: %w", err))
		rec.Seq = 0
	}
	if e.cfg.Observer != nil {
		e.cfg.Observer.ObserveDecision(rec, e.cfg.Now().Sub(now))
	}
	return rec, false, nil
}

// evaluate fills in the features, limits and rule results of rec and its
// outcome, within the decision budget. It never panics; it returns an error
// only for input the limiter cannot price (an unknown currency).
func (e *Engine) evaluate(ctx context.Context, rec *Record, now time.Time) (err error) {
	// Features and limits share one budget; rules get their own, so a slow
	// store still leaves time to decide with what was gathered.
	gather, cancel := context.WithTimeout(ctx, e.cfg.Budget)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			e.cfg.Log.Error("decision panicked", "transaction_id", rec.TransactionID, "panic", v, "stack", string(debug.Stack()))
			e.markDegraded(rec, CauseInternal)
			err = nil
		}
	}()
	rec.EvaluatedAt = now
	p := &rec.Payment
	// Each failure is logged; the decision carries the first one's cause:
	// a slow feature store that also starves the rules is one incident.
	var cause Cause
	fail := func(c Cause, err error) {
		e.cfg.Log.Warn("decision degraded", "transaction_id", rec.TransactionID, "cause", string(c), "err", err)
		if cause == "" {
			cause = c
		}
	}
	if e.cfg.Features != nil {
		fv, err := e.cfg.Features.Features(gather, p, nil)
		if err != nil {
			fail(featureCause(err), fmt.Errorf("features: %w", err))
		}
		rec.Features = fv
	}
	if e.cfg.Limiter != nil {
		l, err := e.cfg.Limiter.Limits(gather, p)
		if errors.Is(err, ErrInvalid) {
			return err
		}
		if err != nil {
			fail(limitsCause(err), fmt.Errorf("limits: %w", err))
		}
		rec.Limits = l
	}
	rs := e.Rules()
	if sp, ok := rs.(Splitter); ok {
		rs = sp.Pick(rec.TransactionID) // a canary: the record names the version that decided
	}
	if rs == nil {
		fail(CauseNoRules, errors.New("no rule set loaded"))
	} else {
		rec.RulesetVersion = rs.Version()
		rec.Thresholds = rs.Thresholds()
		in := Input{Payment: p, Features: rec.Features, Limits: &rec.Limits, Now: now}
		ctx, cancel := context.WithTimeout(ctx, e.cfg.Budget)
		defer cancel()
		rec.Rules = rs.Evaluate(ctx, &in, nil)
		rec.Outcome, rec.Score, rec.Reasons, rec.DeterminedBy = Combine(rec.Rules, rec.Thresholds)
		if err := ctx.Err(); err != nil {
			fail(CauseRulesDeadline, fmt.Errorf("rules: %w", err))
		}
	}
	if cause != "" {
		e.markDegraded(rec, cause)
	}
	return nil
}

// replay answers a request for a transaction already decided: the stored
// record when the request is the same, a conflict when it is not.
func replay(stored *Record, hash string) (*Record, bool, error) {
	if stored.RequestHash != hash {
		return nil, false, fmt.Errorf("transaction %q was already decided with a different request: %w", stored.TransactionID, ErrConflict)
	}
	return stored, true, nil
}

// degrade logs err and marks rec as degraded by cause.
func (e *Engine) degrade(rec *Record, cause Cause, err error) {
	e.cfg.Log.Warn("decision degraded", "transaction_id", rec.TransactionID, "cause", string(cause), "err", err)
	e.markDegraded(rec, cause)
}

// markDegraded marks rec as decided without everything it needed and makes
// its outcome at least as strict as the configured fallback. The first
// cause stays, except that a decision the store could not record says so.
func (e *Engine) markDegraded(rec *Record, cause Cause) {
	rec.Degraded = true
	if rec.DegradedCause == "" || cause == CauseDecisionStoreUnavailable {
		rec.DegradedCause = cause
	}
	fb := e.cfg.Fallback
	if m, ok := e.cfg.FallbackByMerchant[rec.Payment.Merchant.ID]; ok {
		fb = m
	}
	if severity(fb) > severity(rec.Outcome) {
		rec.Outcome = fb
		rec.DeterminedBy = "fallback"
		rec.Reasons = append(rec.Reasons, Reason{Rule: "", Code: "degraded", Message: "The payment could not be fully screened."})
	}
}

func severity(o Outcome) int {
	switch o {
	case Deny:
		return 3
	case Challenge:
		return 2
	case Allow:
		return 1
	}
	return 0
}
