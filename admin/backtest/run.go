package backtest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/rules"
)

// OrderSlack is how far a decision's evaluation time may lag behind the
// commit order of the decision log. A backtest finds the part of the log
// to read by evaluation time, assuming times grow with commit order to
// within this slack (decisions are committed within the commit budget of
// being evaluated); it then filters on the exact time.
const OrderSlack = 5 * time.Minute

// History is the decision log a backtest replays (features.Store).
type History interface {
	// ScanRecords calls fn for every stored decision with sequence
	// number >= from, in commit order, until fn returns an error or ctx
	// ends.
	ScanRecords(ctx context.Context, from uint64, fn func(rec *engine.Record) error) error
}

var errStop = errors.New("stop scan")

// plan is a validated request made ready to run: its compiled candidate
// and the part of the log to read, sequence numbers [first, end).
type plan struct {
	req        Request
	set        *rules.Set
	candidate  CandidateInfo
	first, end uint64
}

// CandidateInfo describes the rule set a backtest ran.
type CandidateInfo struct {
	// Kind is "draft", "version" or "inline".
	Kind    string `json:"kind"`
	Version int64  `json:"version,omitempty"`
	// Hash is the hash of the candidate spec, as versions report it.
	Hash  string `json:"hash"`
	Rules int    `json:"rules"`
}

// resolve returns the spec a candidate names.
func (b *Backtests) resolve(ctx context.Context, c Candidate) (rules.Spec, CandidateInfo, error) {
	switch {
	case c.Draft:
		if b.cfg.Draft == nil {
			return rules.Spec{}, CandidateInfo{}, fmt.Errorf("draft rule set: drafts are not available: %w", engine.ErrNotFound)
		}
		spec, err := b.cfg.Draft(ctx)
		return spec, CandidateInfo{Kind: "draft"}, err
	case c.Version != 0:
		if b.cfg.Versions == nil {
			return rules.Spec{}, CandidateInfo{}, fmt.Errorf("rule set version %d: %w", c.Version, engine.ErrNotFound)
		}
		v, err := b.cfg.Versions.Get(c.Version)
		return v.Spec, CandidateInfo{Kind: "version", Version: c.Version}, err
	case c.Spec != nil:
		return *c.Spec, CandidateInfo{Kind: "inline"}, nil
	}
	return rules.Spec{}, CandidateInfo{}, engine.Invalid("candidate", "invalid_candidate", "no candidate given")
}

// prepare validates req, compiles its candidate and finds the part of the
// log to read. Errors are the client's (invalid, not found, unprocessable)
// or the store's.
func (b *Backtests) prepare(ctx context.Context, req Request) (*plan, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	spec, info, err := b.resolve(ctx, req.Candidate)
	if err != nil {
		return nil, err
	}
	first, firstRec, err := b.seek(ctx, req.From.Add(-OrderSlack))
	if err != nil {
		return nil, err
	}
	end, _, err := b.seek(ctx, req.To.Add(OrderSlack))
	if err != nil {
		return nil, err
	}
	// The candidate sees the features defined now and those the history
	// recorded, so a rule on a since-deleted feature still compiles.
	env := rules.Env{}
	if b.cfg.Env != nil {
		env = b.cfg.Env()
	}
	env.Features = slices.Clone(env.Features)
	if firstRec != nil {
		for _, f := range firstRec.Features {
			if !slices.Contains(env.Features, f.Name) {
				env.Features = append(env.Features, f.Name)
			}
		}
	}
	set, err := rules.Compile(spec, env, info.Version)
	if err != nil {
		return nil, err
	}
	s := set.Spec()
	info.Hash, info.Rules = s.Hash(), len(s.Rules)
	return &plan{req: req, set: set, candidate: info, first: first, end: max(first, end)}, nil
}

// seek returns the smallest sequence number s such that the first stored
// decision at or after s was evaluated at or after t, or lies past the end
// of the log, and that decision (nil past the end). It assumes evaluation
// times grow with sequence numbers (see OrderSlack) and costs O(log n)
// single-record reads.
func (b *Backtests) seek(ctx context.Context, t time.Time) (uint64, *engine.Record, error) {
	at := func(s uint64) (*engine.Record, bool, error) {
		var rec *engine.Record
		err := b.cfg.History.ScanRecords(ctx, s, func(r *engine.Record) error {
			rec = r
			return errStop
		})
		if err != nil && !errors.Is(err, errStop) {
			return nil, false, fmt.Errorf("read decision log: %w", err)
		}
		return rec, rec == nil || !rec.EvaluatedAt.Before(t), nil
	}
	// Exponential search for an upper bound, then binary search.
	lo, hi := uint64(0), uint64(1) // the predicate is false at lo (or lo is 0), true at hi once found
	for {
		_, ok, err := at(hi)
		if err != nil {
			return 0, nil, err
		}
		if ok {
			break
		}
		lo, hi = hi, hi*2
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		_, ok, err := at(mid)
		if err != nil {
			return 0, nil, err
		}
		if ok {
			hi = mid
		} else {
			lo = mid
		}
	}
	rec, _, err := at(hi)
	return hi, rec, err
}

// replay runs a plan: it reads the log from p.first to p.end in commit
// order on the calling goroutine, re-decides every decision the request
// keeps with the candidate, and tallies the result. progress, when not
// nil, is kept at the number of sequence numbers read. It yields the
// processor every Config.YieldEvery decisions so live decisions are not
// queued behind it.
func (b *Backtests) replay(ctx context.Context, p *plan, progress *atomic.Int64) (*Result, error) {
	t := newTally(p.set.Features(), b.cfg.SampleSize)
	th := p.set.Thresholds()
	var results []engine.RuleResult
	n := 0
	err := b.cfg.History.ScanRecords(ctx, p.first, func(rec *engine.Record) error {
		if rec.Seq >= p.end {
			return errStop
		}
		if n++; n%b.cfg.YieldEvery == 0 {
			if progress != nil {
				progress.Store(int64(rec.Seq - p.first))
			}
			runtime.Gosched()
		}
		if !p.req.matches(rec) {
			return nil
		}
		in := engine.Input{Payment: &rec.Payment, Features: rec.Features, Limits: &rec.Limits, Now: rec.EvaluatedAt}
		results = p.set.Evaluate(ctx, &in, results[:0])
		o, _, _, by := engine.Combine(results, th)
		t.add(rec, results, o, by)
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	if err == nil {
		err = ctx.Err() // a cancelled evaluation may have been the last
	}
	if err != nil {
		return nil, fmt.Errorf("replay decisions: %w", err)
	}
	if progress != nil {
		progress.Store(int64(p.end - p.first))
	}
	return t.result(ruleOrder(p.set)), nil
}

// ruleOrder lists the rules a set evaluates, for a result with nothing
// replayed.
func ruleOrder(set *rules.Set) []RuleStats {
	out := []RuleStats{}
	for _, r := range set.Spec().Rules {
		if r.Mode != engine.ModeDisabled {
			out = append(out, RuleStats{ID: r.ID, Mode: r.Mode, Action: r.Action})
		}
	}
	return out
}
