package admin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/rules"
)

// Canary guard defaults and bounds.
const (
	DefaultGuardMinDecisions = 200
	DefaultGuardWindow       = 5 * time.Minute
	MinGuardWindow           = 5 * time.Second
	MaxGuardWindow           = time.Hour
)

// keyCanary holds the running canary (canaryState), if any.
const keyCanary = keyspace.Canary

// Guard is a canary's automatic abort: when, over Window, the canary's
// deny (challenge) rate exceeds the live version's by more than the
// increase, an absolute share (0.05 is five percentage points), the canary
// is aborted. Either increase may be nil (not checked). Both versions need
// MinDecisions in the window before they are compared.
type Guard struct {
	MaxDenyRateIncrease      *float64 `json:"max_deny_rate_increase,omitempty"`
	MaxChallengeRateIncrease *float64 `json:"max_challenge_rate_increase,omitempty"`
	MinDecisions             int      `json:"min_decisions,omitempty"`
	Window                   string   `json:"window,omitempty"`
	window                   time.Duration
}

// check validates g and fills in its defaults.
func (g *Guard) check() error {
	for name, v := range map[string]*float64{"guard.max_deny_rate_increase": g.MaxDenyRateIncrease, "guard.max_challenge_rate_increase": g.MaxChallengeRateIncrease} {
		if v != nil && !(*v > 0 && *v <= 1) {
			return engine.Invalid(name, "invalid_rate", name+" must be a share above 0 and at most 1")
		}
	}
	if g.MaxDenyRateIncrease == nil && g.MaxChallengeRateIncrease == nil {
		return engine.Invalid("guard", "required", "a guard needs max_deny_rate_increase or max_challenge_rate_increase")
	}
	if g.MinDecisions == 0 {
		g.MinDecisions = DefaultGuardMinDecisions
	}
	if g.MinDecisions < 1 || g.MinDecisions > 1_000_000 {
		return engine.Invalid("guard.min_decisions", "invalid_min_decisions", "guard.min_decisions must be between 1 and 1000000")
	}
	g.window = DefaultGuardWindow
	if g.Window != "" {
		d, err := time.ParseDuration(g.Window)
		if err != nil || d < MinGuardWindow || d > MaxGuardWindow {
			return engine.Invalid("guard.window", "invalid_window", fmt.Sprintf("guard.window must be a duration from %s to %s, such as 30s", MinGuardWindow, MaxGuardWindow))
		}
		g.window = d
	}
	g.Window = g.window.String()
	return nil
}

// canaryState is the running canary as stored.
type canaryState struct {
	BaseVersion int64     `json:"base_version"`
	Version     int64     `json:"version"`
	Percent     int       `json:"canary_percent"`
	Guard       *Guard    `json:"guard,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	StartedBy   string    `json:"started_by"`
}

// canaryRun is the running canary and its counts over the guard window.
type canaryRun struct {
	canaryState
	mu      sync.Mutex
	counts  *windowCounts
	seen    int
	aborted bool
}

// GuardEvent is a guardrail acting by itself: a canary guard breached, a
// rule past its hit-rate ceiling. Fired when it is breached, then again
// Resolved once the brake took effect (the canary aborted, the rule in
// shadow). Key names it: "canary:<version>" or "rule:<id>".
type GuardEvent struct {
	Key      string
	Resolved bool
	Summary  string
	Details  any
}

// OnGuard sets what is told of guard events (the alerts); nil means none.
// Call it before traffic is observed.
func (a *API) OnGuard(fn func(ctx context.Context, ev GuardEvent)) { a.onGuard = fn }

func (a *API) guardEvent(ctx context.Context, ev GuardEvent) {
	if a.onGuard != nil {
		a.onGuard(ctx, ev)
	}
}

// windowCounts are decisions by outcome per second over a window, for two
// sides (0 live, 1 canary).
type windowCounts struct {
	secs    []int64
	n       [][2][3]int // [bucket][side][total, deny, challenge]
	latest  int64
	seconds int64
}

func newWindowCounts(window time.Duration) *windowCounts {
	s := int64(math.Ceil(window.Seconds()))
	return &windowCounts{secs: make([]int64, s), n: make([][2][3]int, s), seconds: s}
}

func (w *windowCounts) add(at time.Time, side int, o engine.Outcome) {
	sec := at.Unix()
	if sec <= w.latest-w.seconds {
		return // older than the window
	}
	i := sec % w.seconds
	if w.secs[i] != sec {
		w.secs[i], w.n[i] = sec, [2][3]int{}
	}
	w.n[i][side][0]++
	switch o {
	case engine.Deny:
		w.n[i][side][1]++
	case engine.Challenge:
		w.n[i][side][2]++
	}
	w.latest = max(w.latest, sec)
}

// sum is the counts of the seconds within the window of the latest.
func (w *windowCounts) sum() [2][3]int {
	var out [2][3]int
	for i, sec := range w.secs {
		if sec > w.latest-w.seconds && sec != 0 {
			for side := range 2 {
				for k := range 3 {
					out[side][k] += w.n[i][side][k]
				}
			}
		}
	}
	return out
}

// SideRates are one version's decisions and rates in the guard window.
type SideRates struct {
	Version       int64   `json:"version"`
	Decisions     int     `json:"decisions"`
	DenyRate      float64 `json:"deny_rate"`
	ChallengeRate float64 `json:"challenge_rate"`
}

func rates(version int64, c [3]int) SideRates {
	r := SideRates{Version: version, Decisions: c[0]}
	if c[0] > 0 {
		r.DenyRate, r.ChallengeRate = float64(c[1])/float64(c[0]), float64(c[2])/float64(c[0])
	}
	return r
}

// Observe feeds one decision to the guardrails: the canary's guard and the
// rule guard. main calls it for every decision read from the log; it is
// quick and safe for concurrent use, and may abort the canary or shadow a
// rule (both audited) before returning.
func (a *API) Observe(ctx context.Context, rec *engine.Record) {
	if run := a.canary.Load(); run != nil {
		a.observeCanary(ctx, run, rec)
		return
	}
	a.observeRules(ctx, rec)
}

func (a *API) observeCanary(ctx context.Context, run *canaryRun, rec *engine.Record) {
	side := -1
	switch rec.RulesetVersion {
	case run.BaseVersion:
		side = 0
	case run.Version:
		side = 1
	}
	if side < 0 || run.Guard == nil {
		return
	}
	run.mu.Lock()
	if run.aborted {
		run.mu.Unlock()
		return
	}
	run.counts.add(rec.EvaluatedAt, side, rec.Outcome)
	run.seen++
	if run.seen%16 != 0 {
		run.mu.Unlock()
		return
	}
	c := run.counts.sum()
	live, cand := rates(run.BaseVersion, c[0]), rates(run.Version, c[1])
	reason := breach(run.Guard, live, cand)
	if reason != "" {
		run.aborted = true
	}
	run.mu.Unlock()
	if reason == "" {
		return
	}
	details := map[string]any{"version": run.Version, "base_version": run.BaseVersion, "reason": reason, "live": live, "canary": cand, "window": run.Guard.Window}
	key := fmt.Sprintf("canary:%d", run.Version)
	a.guardEvent(ctx, GuardEvent{Key: key, Summary: fmt.Sprintf("canary of version %d breached its guard: %s", run.Version, reason), Details: details})
	if _, err := a.abortCanary(ctx, "guard", reason, details); err != nil {
		a.cfg.Log.Error("canary guard: abort", "version", run.Version, "err", err)
		return
	}
	a.guardEvent(ctx, GuardEvent{Key: key, Resolved: true, Summary: fmt.Sprintf("canary of version %d aborted; version %d decides every payment", run.Version, run.BaseVersion), Details: details})
}

// breach says how the canary breaches g, "" when it does not.
func breach(g *Guard, live, cand SideRates) string {
	if live.Decisions < g.MinDecisions || cand.Decisions < g.MinDecisions {
		return ""
	}
	if m := g.MaxDenyRateIncrease; m != nil && cand.DenyRate-live.DenyRate > *m {
		return fmt.Sprintf("deny rate %.4f against %.4f live, more than %.4f above", cand.DenyRate, live.DenyRate, *m)
	}
	if m := g.MaxChallengeRateIncrease; m != nil && cand.ChallengeRate-live.ChallengeRate > *m {
		return fmt.Sprintf("challenge rate %.4f against %.4f live, more than %.4f above", cand.ChallengeRate, live.ChallengeRate, *m)
	}
	return ""
}

// startCanary publishes spec as the next version deciding percent of the
// transactions beside the live version. The caller holds a.mu.
func (a *API) startCanary(ctx context.Context, spec rules.Spec, comment string, percent int, g *Guard) (Version, *canaryRun, error) {
	base, ok := liveSet(a.cfg.Engine.Rules())
	if !ok || base.Version() == 0 {
		return Version{}, nil, fmt.Errorf("a canary needs a published live version: %w", engine.ErrConflict)
	}
	actor := engine.Actor(ctx)
	ver, err := a.cfg.Versions.Publish(spec, a.env(), actor, comment, func(s *rules.Set) {
		a.cfg.Engine.SetRules(&engine.Canary{Live: base, Candidate: s, Percent: percent})
	})
	if err != nil {
		return Version{}, nil, err
	}
	run := &canaryRun{canaryState: canaryState{BaseVersion: base.Version(), Version: ver.Number, Percent: percent, Guard: g, StartedAt: a.cfg.Now().UTC(), StartedBy: actor}}
	run.counts = newWindowCounts(guardWindow(g))
	if err := a.putCanary(ctx, &run.canaryState); err != nil {
		return Version{}, nil, err
	}
	a.canary.Store(run)
	return ver, run, nil
}

func guardWindow(g *Guard) time.Duration {
	if g == nil || g.window == 0 {
		return DefaultGuardWindow
	}
	return g.window
}

// canaryUses refuses (conflict) a change that would take what from the
// running canary's rules: uses names the canary's rules that read it.
func (a *API) canaryUses(uses func(rules.Spec) []string, what string) error {
	c, ok := a.cfg.Engine.Rules().(*engine.Canary)
	if !ok {
		return nil
	}
	cand, ok := c.Candidate.(*rules.Set)
	if !ok {
		return nil
	}
	if ids := uses(cand.Spec()); len(ids) > 0 {
		return fmt.Errorf("%s is used by the canary's %s: %w", what, ruleNames(ids), engine.ErrConflict)
	}
	return nil
}

// liveSet is the live *rules.Set of rs, unwrapping a canary.
func liveSet(rs engine.RuleSet) (*rules.Set, bool) {
	if c, ok := rs.(*engine.Canary); ok {
		rs = c.Live
	}
	s, ok := rs.(*rules.Set)
	return s, ok
}

// PromoteCanary makes the canary's version decide every payment.
func (a *API) PromoteCanary(ctx context.Context) (canaryState, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	run := a.canary.Load()
	c, ok := a.cfg.Engine.Rules().(*engine.Canary)
	if run == nil || !ok {
		return canaryState{}, fmt.Errorf("no canary is running: %w", engine.ErrConflict)
	}
	run.mu.Lock()
	run.aborted = true
	run.mu.Unlock()
	a.cfg.Engine.SetRules(c.Candidate)
	if err := a.deleteCanary(ctx); err != nil {
		return canaryState{}, err
	}
	a.canary.Store(nil)
	err := a.record(ctx, "ruleset.canary.promote", "ruleset", auditVersion{Version: run.BaseVersion}, map[string]any{"version": run.Version, "canary_percent": run.Percent})
	return run.canaryState, err
}

// AbortCanary stops the canary by hand: see abortCanary.
func (a *API) AbortCanary(ctx context.Context, reason string) (Version, error) {
	return a.abortCanary(ctx, "", reason, nil)
}

// abortCanary stops the canary: the base version's rules are published
// again as a new version (as a rollback), live for every payment, and the
// abort is audited with reason and details. actor "" is the caller's.
func (a *API) abortCanary(ctx context.Context, actor, reason string, details any) (Version, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	run := a.canary.Load()
	if run == nil {
		return Version{}, fmt.Errorf("no canary is running: %w", engine.ErrConflict)
	}
	if actor == "" {
		actor = engine.Actor(ctx)
	}
	base, err := a.cfg.Versions.Get(run.BaseVersion)
	if err != nil {
		return Version{}, err
	}
	comment := fmt.Sprintf("canary of version %d aborted: %s", run.Version, reason)
	if len(comment) > MaxCommentLen {
		comment = comment[:MaxCommentLen]
	}
	ver, err := a.cfg.Versions.Publish(base.Spec, a.env(), actor, comment, func(s *rules.Set) { a.cfg.Engine.SetRules(s) })
	if err != nil {
		return Version{}, err
	}
	run.mu.Lock()
	run.aborted = true
	run.mu.Unlock()
	if err := a.deleteCanary(ctx); err != nil {
		return Version{}, err
	}
	a.canary.Store(nil)
	after := map[string]any{"version": ver.Number, "hash": ver.Hash, "rolled_back_to": run.BaseVersion, "aborted_version": run.Version, "reason": reason}
	if details != nil {
		after["guard"] = details
	}
	if _, err := a.audit.Record(ctx, Entry{Actor: actor, Action: "ruleset.canary.abort", Target: "ruleset", Before: auditVersion{Version: run.Version}, After: after}); err != nil {
		return ver, fmt.Errorf("canary aborted, but not recorded in the audit trail: %w", err)
	}
	return ver, nil
}

// canaryStatus is GET /admin/ruleset/canary.
type canaryStatus struct {
	Active bool `json:"active"`
	*canaryState
	Live   *SideRates `json:"live,omitempty"`
	Canary *SideRates `json:"canary,omitempty"`
}

func (a *API) canaryStatus() canaryStatus {
	run := a.canary.Load()
	if run == nil {
		return canaryStatus{}
	}
	run.mu.Lock()
	c := run.counts.sum()
	run.mu.Unlock()
	live, cand := rates(run.BaseVersion, c[0]), rates(run.Version, c[1])
	st := run.canaryState
	return canaryStatus{Active: true, canaryState: &st, Live: &live, Canary: &cand}
}

// loadCanary restores a canary that was running when the process stopped:
// the latest version is its candidate, the base version decides the rest.
// A canary overtaken by a later version is dropped. The caller holds a.mu.
func (a *API) loadCanary(ctx context.Context) error {
	var st canaryState
	err := a.cfg.DB.View(ctx, func(tx kv.Tx) error { return getJSON(tx, []byte(keyCanary), &st) })
	if errors.Is(err, kv.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	latest, err := a.cfg.Versions.latestNumber(ctx)
	if err != nil {
		return err
	}
	if latest != st.Version {
		return a.deleteCanary(ctx)
	}
	base, err := a.cfg.Versions.Get(st.BaseVersion)
	if err != nil {
		return err
	}
	cand, err := a.cfg.Versions.Get(st.Version)
	if err != nil {
		return err
	}
	env := a.env()
	live, err := rules.Compile(base.Spec, env, base.Number)
	if err != nil {
		return fmt.Errorf("restore canary base version %d: %w", base.Number, err)
	}
	next, err := rules.Compile(cand.Spec, env, cand.Number)
	if err != nil {
		return fmt.Errorf("restore canary version %d: %w", cand.Number, err)
	}
	if st.Guard != nil {
		if err := st.Guard.check(); err != nil {
			return fmt.Errorf("restore canary guard: %w", err)
		}
	}
	a.cfg.Engine.SetRules(&engine.Canary{Live: live, Candidate: next, Percent: st.Percent})
	a.canary.Store(&canaryRun{canaryState: st, counts: newWindowCounts(guardWindow(st.Guard))})
	return nil
}

// putCanary stores the running canary. The engine already runs it, so the
// write is not cancelled with ctx: a caller that went away must not leave
// a canary that a restart forgets.
func (a *API) putCanary(ctx context.Context, st *canaryState) error {
	v, err := encodeStored(st)
	if err != nil {
		return fmt.Errorf("encode canary: %w", err)
	}
	if err := kv.Set(context.WithoutCancel(ctx), a.cfg.DB, []byte(keyCanary), v); err != nil {
		return fmt.Errorf("store canary: %w", err)
	}
	return nil
}

// deleteCanary forgets the stored canary. Like putCanary it follows a
// change the engine already made, so it is not cancelled with ctx.
func (a *API) deleteCanary(ctx context.Context) error {
	if err := kv.Delete(context.WithoutCancel(ctx), a.cfg.DB, []byte(keyCanary)); err != nil {
		return fmt.Errorf("delete canary: %w", err)
	}
	return nil
}
