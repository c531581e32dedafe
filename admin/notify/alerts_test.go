package notify_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/riskengine/risk/admin/notify"
	"github.com/riskengine/risk/engine"
)

// feed observes n synthetic decisions spread over [from, from+span), the
// first deny of them denied and the first degraded degraded.
func feed(a *notify.Alerts, from time.Time, span time.Duration, n, deny, degraded int) {
	for i := range n {
		o := engine.Allow
		if i < deny {
			o = engine.Deny
		}
		at := from.Add(span * time.Duration(i) / time.Duration(n))
		a.Observe(&engine.Record{Decision: engine.Decision{Outcome: o, Degraded: i < degraded, EvaluatedAt: at}})
	}
}

type alertsPage struct {
	Firing []notify.Alert `json:"firing"`
	Recent []notify.Alert `json:"recent"`
}

func (s *stack) evaluate() {
	s.t.Helper()
	if err := s.alerts.Evaluate(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

func TestDenySpikeFiresAndResolves(t *testing.T) {
	s := newStack(t)
	rc := newReceiver(t, ok)
	h := s.hook(rc.URL, notify.EventAlertFired, notify.EventAlertResolved)
	now := s.clock.now()

	// A 20 % deny rate with no baseline yet: the baseline condition
	// cannot hold, so the deny spike stays quiet.
	feed(s.alerts, now.Add(-4*time.Minute), 4*time.Minute, 200, 40, 0)
	s.evaluate()
	var page alertsPage
	s.call("aud", "GET", "/admin/alerts", nil, &page)
	if len(page.Firing) != 0 {
		t.Fatalf("firing without a baseline: %+v", page.Firing)
	}

	// Seven days of the same hour at 1 % deny.
	for d := 1; d <= 7; d++ {
		feed(s.alerts, now.Add(-time.Duration(d)*24*time.Hour).Truncate(time.Hour), time.Hour, 500, 5, 0)
	}
	s.evaluate()
	s.call("aud", "GET", "/admin/alerts", nil, &page)
	if len(page.Firing) != 1 || page.Firing[0].RuleID != "deny_spike" || page.Firing[0].Baseline == nil {
		t.Fatalf("firing = %+v, want deny_spike with its baseline", page.Firing)
	}
	if v := *page.Firing[0].Value; v < 0.19 || v > 0.21 {
		t.Errorf("value = %v, want 0.2", v)
	}
	s.evaluate() // still firing: no second event
	s.deliver()

	// Six minutes on, the window holds a normal rate.
	s.clock.add(6 * time.Minute)
	feed(s.alerts, s.clock.now().Add(-3*time.Minute), 3*time.Minute, 300, 2, 0)
	s.evaluate()
	s.call("aud", "GET", "/admin/alerts", nil, &page)
	if len(page.Firing) != 0 || len(page.Recent) != 1 || page.Recent[0].State != notify.StateResolved {
		t.Fatalf("alerts = %+v, want deny_spike resolved", page)
	}
	s.deliver()
	var types []string
	for _, d := range rc.deliveries() {
		if err := verify(h.Secret, d.header.Get("Risk-Signature"), d.body, s.clock.now(), time.Hour); err != nil {
			t.Error(err)
		}
		var ev struct {
			Type string       `json:"type"`
			Data notify.Alert `json:"data"`
		}
		_ = json.Unmarshal(d.body, &ev)
		if ev.Data.RuleID != "deny_spike" {
			t.Errorf("event for %q", ev.Data.RuleID)
		}
		types = append(types, ev.Type)
	}
	if len(types) != 2 || types[0] != notify.EventAlertFired || types[1] != notify.EventAlertResolved {
		t.Errorf("events %v, want alert.fired then alert.resolved", types)
	}
}

func TestTrafficDropAndDegraded(t *testing.T) {
	s := newStack(t)
	now := s.clock.now()
	for d := 1; d <= 7; d++ {
		feed(s.alerts, now.Add(-time.Duration(d)*24*time.Hour).Truncate(time.Hour), time.Hour, 3600, 0, 0)
	}
	// 10 % of the usual traffic over the last 15 minutes, 5 % degraded.
	feed(s.alerts, now.Add(-15*time.Minute), 15*time.Minute, 90, 0, 5)
	s.evaluate()
	var page alertsPage
	s.call("ana", "GET", "/admin/alerts", nil, &page)
	got := map[string]bool{}
	for _, a := range page.Firing {
		got[a.RuleID] = true
	}
	if !got["traffic_drop"] || got["deny_spike"] {
		t.Errorf("firing %v, want traffic_drop and not deny_spike", got)
	}
	// 90 decisions are under degraded's 100 minimum: not judged.
	if got["degraded"] {
		t.Errorf("degraded fired on %d decisions", 90)
	}
}

func TestAlertRulesAPI(t *testing.T) {
	s := newStack(t)
	var list struct {
		Rules []notify.AlertRule `json:"rules"`
	}
	s.call("aud", "GET", "/admin/alerts/rules", nil, &list)
	if len(list.Rules) != 3 {
		t.Fatalf("default rules = %+v, want 3", list.Rules)
	}
	for _, bad := range []map[string]any{
		{"id": "x", "metric": "fraud_rate", "window": "5m", "op": ">", "threshold": 0.1},
		{"id": "x", "metric": "deny_rate", "window": "30s", "op": ">", "threshold": 0.1},
		{"id": "x", "metric": "deny_rate", "window": "5m", "op": ">="},
		{"id": "x", "metric": "deny_rate", "window": "5m", "op": ">"},
		{"id": "x", "metric": "deny_rate", "window": "5m", "op": ">", "threshold": 2},
		{"id": "x", "metric": "rule_hit_rate", "window": "5m", "op": ">", "threshold": 0.5},
		{"id": "X Y", "metric": "deny_rate", "window": "5m", "op": ">", "threshold": 0.5},
	} {
		if code := s.call("ana", "POST", "/admin/alerts/rules", bad, nil); code != http.StatusBadRequest {
			t.Errorf("create %v = %d, want 400", bad, code)
		}
	}
	hit := map[string]any{"id": "velocity_hits", "metric": "rule_hit_rate", "rule": "big_deny", "window": "10m", "op": ">", "threshold": 0.5, "enabled": true}
	if code := s.call("aud", "POST", "/admin/alerts/rules", hit, nil); code != http.StatusForbidden {
		t.Errorf("auditor create = %d, want 403", code)
	}
	if code := s.call("ana", "POST", "/admin/alerts/rules", hit, nil); code != http.StatusCreated {
		t.Fatalf("create = %d", code)
	}
	if code := s.call("ana", "POST", "/admin/alerts/rules", hit, nil); code != http.StatusConflict {
		t.Errorf("create twice = %d, want 409", code)
	}
	// A rule's hit rate from real decisions: every one of these matches.
	for range 20 {
		rec := s.decide(200000)
		s.alerts.Observe(rec)
	}
	hit["min_decisions"] = 10
	if code := s.call("ana", "PUT", "/admin/alerts/rules/velocity_hits", hit, nil); code != http.StatusOK {
		t.Fatalf("replace = %d", code)
	}
	s.evaluate()
	var page alertsPage
	s.call("ana", "GET", "/admin/alerts", nil, &page)
	if len(page.Firing) != 1 || page.Firing[0].RuleID != "velocity_hits" {
		t.Fatalf("firing = %+v, want velocity_hits", page.Firing)
	}
	if code := s.call("ana", "DELETE", "/admin/alerts/rules/velocity_hits", nil, nil); code != http.StatusNoContent {
		t.Errorf("delete = %d", code)
	}
	s.call("ana", "GET", "/admin/alerts", nil, &page)
	if len(page.Firing) != 0 {
		t.Errorf("firing after its rule was deleted: %+v", page.Firing)
	}
	if code := s.call("ana", "DELETE", "/admin/alerts/rules/deny_spike", nil, nil); code != http.StatusNoContent {
		t.Errorf("delete default = %d", code)
	}
	// A deleted default stays deleted at the next start.
	again := notify.NewAlerts(notify.AlertsConfig{DB: s.store.KV(), Notifier: s.n})
	if err := again.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := again.Rule("deny_spike"); err == nil {
		t.Error("deny_spike came back after a restart")
	}
}
