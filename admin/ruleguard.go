package admin

import (
	"context"
	"fmt"
	"sync"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/rules"
)

// The rule guard: a live rule with a hit-rate ceiling (rules.Rule.MaxHitRate)
// whose share of matched decisions over RuleGuardWindow passes it, with at
// least RuleGuardMinDecisions decided, is switched to shadow by a new
// version, audited and alerted: an emergency brake for a rule that
// suddenly matches everyone.
const (
	RuleGuardWindowSeconds = 300
	RuleGuardMinDecisions  = 100
)

// ruleGuard counts, per second over the window, the decisions of one live
// version and the hits of its rules with a ceiling.
type ruleGuard struct {
	version  int64
	ids      []string
	ceilings []float64
	mu       sync.Mutex
	secs     []int64
	total    []int
	hits     [][]int // [bucket][rule]
	latest   int64
	seen     int
	tripped  map[string]bool
}

func newRuleGuard(set *rules.Set) *ruleGuard {
	g := &ruleGuard{version: set.Version(), tripped: map[string]bool{}}
	for _, r := range set.Spec().Rules {
		if r.MaxHitRate > 0 && r.Mode == engine.ModeActive {
			g.ids, g.ceilings = append(g.ids, r.ID), append(g.ceilings, r.MaxHitRate)
		}
	}
	g.secs, g.total, g.hits = make([]int64, RuleGuardWindowSeconds), make([]int, RuleGuardWindowSeconds), make([][]int, RuleGuardWindowSeconds)
	for i := range g.hits {
		g.hits[i] = make([]int, len(g.ids))
	}
	return g
}

// add counts rec; it returns the rules past their ceiling, once each.
func (g *ruleGuard) add(rec *engine.Record) (trip []int, rates []float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	sec := rec.EvaluatedAt.Unix()
	if sec <= g.latest-RuleGuardWindowSeconds {
		return nil, nil
	}
	i := sec % RuleGuardWindowSeconds
	if g.secs[i] != sec {
		g.secs[i], g.total[i] = sec, 0
		clear(g.hits[i])
	}
	g.total[i]++
	for k, id := range g.ids {
		for j := range rec.Rules {
			r := &rec.Rules[j]
			if r.ID == id && r.Matched && r.Error == "" {
				g.hits[i][k]++
				break
			}
		}
	}
	g.latest = max(g.latest, sec)
	g.seen++
	if g.seen%16 != 0 {
		return nil, nil
	}
	total, hits := 0, make([]int, len(g.ids))
	for b, s := range g.secs {
		if s != 0 && s > g.latest-RuleGuardWindowSeconds {
			total += g.total[b]
			for k := range hits {
				hits[k] += g.hits[b][k]
			}
		}
	}
	if total < RuleGuardMinDecisions {
		return nil, nil
	}
	for k, id := range g.ids {
		rate := float64(hits[k]) / float64(total)
		if rate > g.ceilings[k] && !g.tripped[id] {
			g.tripped[id] = true
			trip, rates = append(trip, k), append(rates, rate)
		}
	}
	return trip, rates
}

// observeRules feeds rec to the rule guard of the live version.
func (a *API) observeRules(ctx context.Context, rec *engine.Record) {
	set, ok := a.cfg.Engine.Rules().(*rules.Set)
	if !ok || rec.RulesetVersion != set.Version() || set.Version() == 0 {
		return
	}
	g := a.ruleGuard.Load()
	if g == nil || g.version != set.Version() {
		g = newRuleGuard(set)
		a.ruleGuard.Store(g)
	}
	if len(g.ids) == 0 {
		return
	}
	trip, rates := g.add(rec)
	for n, k := range trip {
		id, rate, ceiling := g.ids[k], rates[n], g.ceilings[k]
		details := map[string]any{"rule": id, "hit_rate": rate, "max_hit_rate": ceiling, "version": g.version, "window_seconds": RuleGuardWindowSeconds}
		key := "rule:" + id
		a.guardEvent(ctx, GuardEvent{Key: key, Summary: fmt.Sprintf("rule %s matched %.1f%% of decisions, above its ceiling of %.1f%%", id, 100*rate, 100*ceiling), Details: details})
		ver, err := a.shadowRule(ctx, g.version, id, details)
		if err != nil {
			a.cfg.Log.Error("rule guard: shadow", "rule", id, "err", err)
			continue
		}
		details["shadow_version"] = ver.Number
		a.guardEvent(ctx, GuardEvent{Key: key, Resolved: true, Summary: fmt.Sprintf("rule %s switched to shadow in version %d", id, ver.Number), Details: details})
	}
}

// shadowRule publishes the live version with rule id in shadow mode, as
// "guard", and audits it as rule.guard.shadow. A draft without unpublished
// changes follows the new version.
func (a *API) shadowRule(ctx context.Context, from int64, id string, details map[string]any) (Version, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.canary.Load() != nil {
		return Version{}, fmt.Errorf("a canary is running: %w", engine.ErrConflict)
	}
	spec, n, err := a.liveSpec()
	if err != nil {
		return Version{}, err
	}
	if n != from {
		return Version{}, fmt.Errorf("version %d is no longer live: %w", from, engine.ErrConflict)
	}
	spec.Rules = append([]rules.Rule(nil), spec.Rules...)
	found := false
	for i := range spec.Rules {
		if spec.Rules[i].ID == id {
			spec.Rules[i].Mode, found = engine.ModeShadow, true
		}
	}
	if !found {
		return Version{}, fmt.Errorf("rule %q: %w", id, engine.ErrNotFound)
	}
	comment := fmt.Sprintf("rule guard: %s switched to shadow at a hit rate of %.4f", id, details["hit_rate"])
	ver, err := a.cfg.Versions.Publish(spec, a.env(), "guard", comment, func(s *rules.Set) { a.cfg.Engine.SetRules(s) })
	if err != nil {
		return Version{}, err
	}
	m, _, err := a.drafts.meta(ctx)
	if err != nil {
		return ver, err
	}
	if !m.Changed {
		m.BaseVersion = ver.Number
		if err := a.drafts.replace(ctx, m, ver.Spec, ver.Author, ver.CreatedAt); err != nil {
			return ver, err
		}
	}
	after := map[string]any{"mode": engine.ModeShadow, "version": ver.Number}
	for k, v := range details {
		after[k] = v
	}
	if _, err := a.audit.Record(ctx, Entry{Actor: "guard", Action: "rule.guard.shadow", Target: "rule:" + id, Before: map[string]any{"mode": engine.ModeActive, "version": from}, After: after}); err != nil {
		return ver, fmt.Errorf("rule %s shadowed, but not recorded in the audit trail: %w", id, err)
	}
	return ver, nil
}
