package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/kv"
)

// Alert rule metrics.
const (
	MetricDenyRate      = "deny_rate"
	MetricChallengeRate = "challenge_rate"
	MetricAllowRate     = "allow_rate"
	MetricDegradedRate  = "degraded_rate"
	MetricRuleHitRate   = "rule_hit_rate"
	MetricDecisionRate  = "decision_rate"
)

// Alert defaults and bounds.
const (
	DefaultEvalInterval = 15 * time.Second
	MaxAlertRules       = 100
	// recentAlerts is how many alerts GET /admin/alerts lists.
	recentAlerts = 100
)

// Alert is one firing of an alert rule or of a guardrail.
type Alert struct {
	ID  string `json:"id"`
	Key string `json:"key"`
	// RuleID is the alert rule's id; empty for a guardrail.
	RuleID     string    `json:"rule_id,omitempty"`
	State      string    `json:"state"` // firing or resolved
	Summary    string    `json:"summary"`
	Value      *float64  `json:"value,omitempty"`
	Baseline   *float64  `json:"baseline,omitempty"`
	Threshold  *float64  `json:"threshold,omitempty"`
	FiredAt    time.Time `json:"fired_at"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	Details    any       `json:"details,omitempty"`
}

// Alert states.
const (
	StateFiring   = "firing"
	StateResolved = "resolved"
)

// AlertsConfig configures Alerts. DB and Notifier are required.
type AlertsConfig struct {
	// DB holds the alert rules and the alerts (features.Store.KV on a
	// single node).
	DB       kv.DB
	Notifier *Notifier
	// EvalInterval is how often the rules are evaluated; zero means
	// DefaultEvalInterval.
	EvalInterval time.Duration
	// Retention is how long resolved alerts are kept; zero means
	// DefaultRetention.
	Retention time.Duration
	Now       func() time.Time
	Log       *slog.Logger
}

// Alerts evaluates alert rules over live rates and keeps the alerts they
// and the guardrails fire; each firing and resolution is a webhook event.
// It is safe for concurrent use.
type Alerts struct {
	cfg   AlertsConfig
	rates rates
	rules atomic.Pointer[[]AlertRule]

	mu     sync.Mutex // rule changes, firing
	firing map[string]*Alert

	stop chan struct{}
	done chan struct{}
}

// NewAlerts returns Alerts for cfg. It does no I/O.
func NewAlerts(cfg AlertsConfig) *Alerts {
	if cfg.EvalInterval <= 0 {
		cfg.EvalInterval = DefaultEvalInterval
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	a := &Alerts{cfg: cfg, firing: map[string]*Alert{}}
	empty := []AlertRule{}
	a.rules.Store(&empty)
	return a
}

// Observe counts one decision into the live rates. It is quick.
func (a *Alerts) Observe(rec *engine.Record) { a.rates.observe(rec) }

// Load stores the default rules at the first start, then reads the rules
// and the firing alerts.
func (a *Alerts) Load(ctx context.Context) error {
	err := a.cfg.DB.Update(ctx, func(tx kv.Tx) error {
		if _, err := tx.Get([]byte(keyAlertSeeded)); err == nil {
			return nil
		} else if !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		for _, r := range DefaultAlertRules() {
			v, err := encodeValue(r)
			if err != nil {
				return err
			}
			if err := tx.Set([]byte(prefixAlertRule+r.ID), v); err != nil {
				return err
			}
		}
		return tx.Set([]byte(keyAlertSeeded), []byte{1})
	})
	if err != nil {
		return fmt.Errorf("seed alert rules: %w", err)
	}
	list := []AlertRule{}
	err = a.cfg.DB.View(ctx, func(tx kv.Tx) error {
		return tx.Scan([]byte(prefixAlertRule), kv.ScanOptions{}, func(_, v []byte) error {
			var r AlertRule
			if err := decodeValue(v, &r); err != nil {
				return err
			}
			if err := r.check(); err != nil {
				return fmt.Errorf("stored alert rule %q: %w", r.ID, err)
			}
			list = append(list, r)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("read alert rules: %w", err)
	}
	a.rules.Store(&list)
	recent, err := a.Recent(ctx)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range recent {
		if al := recent[i]; al.State == StateFiring {
			a.firing[al.Key] = &al
		}
	}
	return nil
}

// Open loads, then evaluates the rules every EvalInterval until Close.
func (a *Alerts) Open(ctx context.Context) error {
	if err := a.Load(ctx); err != nil {
		return err
	}
	a.stop, a.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(a.done)
		t := time.NewTicker(a.cfg.EvalInterval)
		defer t.Stop()
		for {
			select {
			case <-a.stop:
				return
			case <-t.C:
				if err := a.Evaluate(context.Background()); err != nil {
					a.cfg.Log.Error("alerts: evaluate", "err", err)
				}
			}
		}
	}()
	return nil
}

// Close stops the evaluation and waits for it.
func (a *Alerts) Close(ctx context.Context) error {
	if a.stop == nil {
		return nil
	}
	close(a.stop)
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop alerts: %w", ctx.Err())
	}
}

// Firing counts the alerts firing now.
func (a *Alerts) Firing() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.firing)
}

// Rules returns the alert rules, sorted by id.
func (a *Alerts) Rules() []AlertRule { return *a.rules.Load() }

// Rule returns alert rule id, or an error wrapping engine.ErrNotFound.
func (a *Alerts) Rule(id string) (AlertRule, error) {
	for _, r := range a.Rules() {
		if r.ID == id {
			return r, nil
		}
	}
	return AlertRule{}, fmt.Errorf("alert rule %q: %w", id, engine.ErrNotFound)
}

// PutRule checks and stores r, creating it (create true; an existing id
// is a conflict) or replacing it (an unknown id is not found). It returns
// the rule before (zero when created).
func (a *Alerts) PutRule(ctx context.Context, r AlertRule, create bool) (AlertRule, error) {
	if err := r.check(); err != nil {
		return AlertRule{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := a.Rules()
	i := slices.IndexFunc(cur, func(x AlertRule) bool { return x.ID == r.ID })
	switch {
	case create && i >= 0:
		return AlertRule{}, fmt.Errorf("alert rule %q exists: %w", r.ID, engine.ErrConflict)
	case !create && i < 0:
		return AlertRule{}, fmt.Errorf("alert rule %q: %w", r.ID, engine.ErrNotFound)
	case create && len(cur) >= MaxAlertRules:
		return AlertRule{}, fmt.Errorf("%d alert rules exist, the most allowed: %w", MaxAlertRules, engine.ErrConflict)
	}
	v, err := encodeValue(r)
	if err != nil {
		return AlertRule{}, err
	}
	if err := kv.Set(ctx, a.cfg.DB, []byte(prefixAlertRule+r.ID), v); err != nil {
		return AlertRule{}, fmt.Errorf("store alert rule: %w", err)
	}
	next := slices.Clone(cur)
	var before AlertRule
	if i >= 0 {
		before, next[i] = next[i], r
	} else {
		next = append(next, r)
		slices.SortFunc(next, func(x, y AlertRule) int { return cmpString(x.ID, y.ID) })
	}
	a.rules.Store(&next)
	return before, nil
}

// DeleteRule removes alert rule id and resolves its firing alert, if any.
func (a *Alerts) DeleteRule(ctx context.Context, id string) (AlertRule, error) {
	a.mu.Lock()
	cur := a.Rules()
	i := slices.IndexFunc(cur, func(x AlertRule) bool { return x.ID == id })
	if i < 0 {
		a.mu.Unlock()
		return AlertRule{}, fmt.Errorf("alert rule %q: %w", id, engine.ErrNotFound)
	}
	if err := kv.Delete(ctx, a.cfg.DB, []byte(prefixAlertRule+id)); err != nil {
		a.mu.Unlock()
		return AlertRule{}, fmt.Errorf("delete alert rule: %w", err)
	}
	r := cur[i]
	next := slices.Delete(slices.Clone(cur), i, i+1)
	a.rules.Store(&next)
	a.mu.Unlock()
	return r, a.Resolve(ctx, "alert:"+id, "alert rule deleted", nil)
}

// measure is a rule's value now, its baseline (nil without one) and
// whether there is enough traffic to judge.
func (a *Alerts) measure(r *AlertRule, now time.Time) (value float64, baseline *float64, enough bool) {
	w := a.rates.window(now, r.window)
	share := func(c *counts) (float64, bool) {
		if c.total == 0 {
			return 0, false
		}
		var n int
		switch r.Metric {
		case MetricAllowRate:
			n = c.outcomes[0]
		case MetricChallengeRate:
			n = c.outcomes[1]
		case MetricDenyRate:
			n = c.outcomes[2]
		case MetricDegradedRate:
			n = c.degraded
		case MetricRuleHitRate:
			n = c.hits[r.Rule]
		}
		return float64(n) / float64(c.total), true
	}
	b, days := a.rates.baseline(now)
	if r.Metric == MetricDecisionRate {
		value = float64(w.total) / r.window.Seconds()
		if days > 0 {
			bv := float64(b.total) / (float64(days) * 3600)
			baseline = &bv
		}
		return value, baseline, r.BaselineMultiple == nil || (days > 0 && b.total >= r.MinDecisions)
	}
	value, ok := share(&w)
	if bv, ok := share(&b); ok && days > 0 {
		baseline = &bv
	}
	return value, baseline, ok && w.total >= r.MinDecisions
}

// Evaluate checks every enabled rule against the live rates now, firing
// the rules whose conditions hold and resolving those that no longer do.
func (a *Alerts) Evaluate(ctx context.Context) error {
	now := a.cfg.Now().UTC()
	var errs []error
	for _, r := range a.Rules() {
		key := "alert:" + r.ID
		if !r.Enabled {
			errs = append(errs, a.Resolve(ctx, key, "alert rule disabled", nil))
			continue
		}
		value, baseline, enough := a.measure(&r, now)
		if !enough {
			continue // not enough traffic to judge: stay as is
		}
		v := value
		details := map[string]any{"metric": r.Metric, "window": r.Window, "op": r.Op, "rule": r.Rule}
		if r.holds(value, baseline) {
			summary := fmt.Sprintf("%s: %s %s is %.4f", r.ID, r.Metric, r.Window, value)
			errs = append(errs, a.fire(ctx, Alert{Key: key, RuleID: r.ID, Summary: summary, Value: &v, Baseline: baseline, Threshold: r.Threshold, Details: details}))
		} else {
			errs = append(errs, a.Resolve(ctx, key, fmt.Sprintf("%s: %s %s back to %.4f", r.ID, r.Metric, r.Window, value), &v))
		}
	}
	return errors.Join(errs...)
}

// Fire fires an alert for a guardrail (key "canary:<version>",
// "rule:<id>"), unless one of key is firing.
func (a *Alerts) Fire(ctx context.Context, key, summary string, details any) error {
	return a.fire(ctx, Alert{Key: key, Summary: summary, Details: details})
}

func (a *Alerts) fire(ctx context.Context, al Alert) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.firing[al.Key]; ok {
		return nil
	}
	now := a.cfg.Now().UTC()
	al.ID, al.State, al.FiredAt = engine.NewID("alr_", now), StateFiring, now
	if err := a.store(ctx, al); err != nil {
		return err
	}
	a.firing[al.Key] = &al
	_, err := a.cfg.Notifier.Publish(ctx, EventAlertFired, "evt_"+al.ID+"_fired", al)
	return err
}

// Resolve resolves the firing alert of key, if any; value, when given, is
// the value that resolved it.
func (a *Alerts) Resolve(ctx context.Context, key, summary string, value *float64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	cur, ok := a.firing[key]
	if !ok {
		return nil
	}
	al := *cur
	al.State, al.ResolvedAt, al.Summary = StateResolved, a.cfg.Now().UTC(), summary
	if value != nil {
		al.Value = value
	}
	if err := a.store(ctx, al); err != nil {
		return err
	}
	delete(a.firing, key)
	_, err := a.cfg.Notifier.Publish(ctx, EventAlertResolved, "evt_"+al.ID+"_resolved", al)
	return err
}

func (a *Alerts) store(ctx context.Context, al Alert) error {
	v, err := encodeValue(al)
	if err != nil {
		return err
	}
	key := alertKey(al.FiredAt.UnixNano(), al.Key)
	err = a.cfg.DB.Update(ctx, func(tx kv.Tx) error {
		if al.State == StateResolved {
			return tx.SetTTL(key, v, a.cfg.Retention)
		}
		return tx.Set(key, v)
	})
	if err != nil {
		return fmt.Errorf("store alert: %w", err)
	}
	return nil
}

// Recent returns the firing alerts and the last resolved ones, newest
// first, at most recentAlerts.
func (a *Alerts) Recent(ctx context.Context) ([]Alert, error) {
	out := []Alert{}
	err := a.cfg.DB.View(ctx, func(tx kv.Tx) error {
		return tx.Scan([]byte(prefixAlert), kv.ScanOptions{Reverse: true}, func(_, v []byte) error {
			if len(out) == recentAlerts {
				return kv.Stop
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			var al Alert
			if err := decodeValue(v, &al); err != nil {
				return err
			}
			out = append(out, al)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	return out, nil
}
