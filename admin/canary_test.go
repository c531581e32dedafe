package admin_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/rules"
)

// decideN decides n new transactions (prefix-i) on the engine directly,
// from 4 goroutines, and returns the records in no particular order.
func (h *harness) decideN(prefix string, n int) []*engine.Record {
	h.tb.Helper()
	var (
		mu   sync.Mutex
		out  []*engine.Record
		wg   sync.WaitGroup
		errs = make(chan error, 4)
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				p := engine.Payment{TransactionID: fmt.Sprintf("%s-%d", prefix, i), Amount: 1000 + int64(i%50), Currency: "USD", Merchant: engine.Merchant{ID: "m_1"}}
				rec, _, err := h.engine.Decide(context.Background(), p, nil)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				out = append(out, rec)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		h.tb.Fatal(err)
	}
	return out
}

type publishedCanary struct {
	Version int64 `json:"version"`
	Live    bool  `json:"live"`
	Canary  struct {
		BaseVersion int64 `json:"base_version"`
		Percent     int   `json:"canary_percent"`
	} `json:"canary"`
}

// addRule adds a rule to the draft.
func (h *harness) addRule(r rules.Rule) {
	h.tb.Helper()
	h.must(http.StatusCreated, "POST", "/admin/rules", r, nil)
}

func TestCanarySplitAndRetries(t *testing.T) {
	h := newHarness(t)
	base := h.liveVersion()
	h.addRule(rules.Rule{ID: "canary_marker", Expression: "amount < 0", Action: engine.ActionScore, Score: 1})
	var pub publishedCanary
	h.must(http.StatusCreated, "POST", "/admin/ruleset/publish", map[string]any{"canary_percent": 10, "comment": "try"}, &pub)
	if pub.Live || pub.Canary.Percent != 10 || pub.Canary.BaseVersion != base || pub.Version != base+1 {
		t.Fatalf("publish = %+v, want version %d as a 10%% canary over %d", pub, base+1, base)
	}
	if got := h.liveVersion(); got != base {
		t.Errorf("live version %d during the canary, want %d", got, base)
	}

	const n = 10000
	recs := h.decideN("split", n)
	byTx := map[string]int64{}
	canary := 0
	for _, r := range recs {
		byTx[r.TransactionID] = r.RulesetVersion
		switch r.RulesetVersion {
		case pub.Version:
			canary++
		case base:
		default:
			t.Fatalf("decided by version %d, want %d or %d", r.RulesetVersion, base, pub.Version)
		}
	}
	share := float64(canary) / n
	t.Logf("canary decided %d of %d (%.2f%%)", canary, n, 100*share)
	if math.Abs(share-0.10) > 0.02 {
		t.Errorf("canary share %.4f, want 0.10 ± 0.02", share)
	}

	// Retries meet the version of the first answer: the stored record, and
	// a fresh evaluation (a record that was never stored) picks the same.
	c := h.engine.Rules().(*engine.Canary)
	for tx, v := range byTx {
		if got := c.Pick(tx).Version(); got != v {
			t.Fatalf("%s: a retry would meet version %d, first met %d", tx, got, v)
		}
	}
	for _, r := range recs[:200] {
		p := r.Payment
		p.OccurredAt = time.Time{} // as the gateway sent it
		again, replayed, err := h.engine.Decide(context.Background(), p, nil)
		if err != nil {
			t.Fatalf("retry of %s: %v", r.TransactionID, err)
		}
		if !replayed || again.RulesetVersion != r.RulesetVersion {
			t.Fatalf("retry of %s = version %d replayed %v, want version %d", r.TransactionID, again.RulesetVersion, replayed, r.RulesetVersion)
		}
	}

	// A restart restores the canary with the same split.
	api2 := admin.New(admin.Config{DB: h.store.KV(), Engine: h.engine, Versions: h.versions, Lists: h.lists, Features: h.store})
	h.engine.SetRules(c.Candidate) // as LoadRules leaves it: the latest version
	if err := api2.Load(); err != nil {
		t.Fatal(err)
	}
	c2, ok := h.engine.Rules().(*engine.Canary)
	if !ok || c2.Percent != 10 || c2.Candidate.Version() != pub.Version || c2.Live.Version() != base {
		t.Fatalf("after a restart the engine runs %T, want the canary restored", h.engine.Rules())
	}

	// While it runs, no other publish.
	h.must(http.StatusConflict, "POST", "/admin/ruleset/publish", nil, nil)
	h.must(http.StatusConflict, "POST", "/admin/ruleset/rollback", map[string]any{"version": base}, nil)

	h.must(http.StatusOK, "POST", "/admin/ruleset/canary/promote", nil, nil)
	if got := h.liveVersion(); got != pub.Version {
		t.Errorf("after promote live = %d, want %d", got, pub.Version)
	}
	if _, ok := h.engine.Rules().(*engine.Canary); ok {
		t.Error("still a canary after promote")
	}
	h.must(http.StatusConflict, "POST", "/admin/ruleset/canary/promote", nil, nil)
}

func TestCanaryPublishRefusesBadInput(t *testing.T) {
	h := newHarness(t)
	for _, body := range []map[string]any{
		{"canary_percent": 100},
		{"canary_percent": -1},
		{"guard": map[string]any{"max_deny_rate_increase": 0.05}},
		{"canary_percent": 5, "guard": map[string]any{}},
		{"canary_percent": 5, "guard": map[string]any{"max_deny_rate_increase": 1.5}},
		{"canary_percent": 5, "guard": map[string]any{"max_deny_rate_increase": 0.05, "window": "1s"}},
		{"canary_percent": 5, "guard": map[string]any{"max_deny_rate_increase": 0.05, "window": "soon"}},
		{"canary_percent": 5, "guard": map[string]any{"max_deny_rate_increase": 0.05, "min_decisions": -3}},
	} {
		if code := h.do("POST", "/admin/ruleset/publish", body, nil); code != http.StatusBadRequest {
			t.Errorf("publish %v = %d, want 400", body, code)
		}
	}
	if _, ok := h.engine.Rules().(*engine.Canary); ok {
		t.Error("a refused publish started a canary")
	}
}

// TestCanaryGuardAbortsABadRule: a canary whose new rule denies everything
// is aborted by its guard within its window, audited, and its alert fired
// and resolved.
func TestCanaryGuardAbortsABadRule(t *testing.T) {
	h := newHarness(t)
	var (
		mu     sync.Mutex
		events []admin.GuardEvent
	)
	h.api.OnGuard(func(_ context.Context, ev admin.GuardEvent) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	})
	base := h.liveVersion()
	h.addRule(rules.Rule{ID: "deny_everyone", Expression: "amount > 0", Action: engine.ActionDeny})
	var pub publishedCanary
	h.must(http.StatusCreated, "POST", "/admin/ruleset/publish", map[string]any{
		"canary_percent": 20,
		"guard":          map[string]any{"max_deny_rate_increase": 0.05, "min_decisions": 40, "window": "30s"},
	}, &pub)

	decided, candidate := 0, 0
	for i := 0; i < 2000 && h.api != nil; i++ {
		recs := h.decideN(fmt.Sprintf("guard%d", i), 16)
		for _, r := range recs {
			decided++
			if r.RulesetVersion == pub.Version {
				candidate++
			}
			h.api.Observe(context.Background(), r)
		}
		if _, ok := h.engine.Rules().(*engine.Canary); !ok {
			break
		}
	}
	if _, ok := h.engine.Rules().(*engine.Canary); ok {
		t.Fatalf("canary still running after %d decisions (%d by the candidate)", decided, candidate)
	}
	t.Logf("aborted after %d decisions, %d by the canary", decided, candidate)
	// Both sides need 40 in the window; at 20 % that is about 200 decisions,
	// checked every 16: well within one 30 s window of traffic.
	if decided > 400 {
		t.Errorf("aborted after %d decisions, want within about 200", decided)
	}
	live := h.liveVersion()
	if live <= pub.Version {
		t.Fatalf("live version %d after the abort, want a new version after %d", live, pub.Version)
	}
	var ver struct {
		Spec rules.Spec `json:"spec"`
	}
	h.must(http.StatusOK, "GET", fmt.Sprintf("/admin/ruleset/versions/%d", live), nil, &ver)
	for _, r := range ver.Spec.Rules {
		if r.ID == "deny_everyone" {
			t.Errorf("the aborted rule is live in version %d", live)
		}
	}
	for _, r := range h.decideN("after", 50) {
		if r.RulesetVersion != live {
			t.Fatalf("after the abort a decision met version %d, want %d", r.RulesetVersion, live)
		}
	}
	entries, _, err := h.api.Audit().Query(context.Background(), admin.AuditQuery{Action: "ruleset.canary.abort"})
	if err != nil || len(entries) != 1 || entries[0].Actor != "guard" {
		t.Fatalf("audit = %+v %v, want one ruleset.canary.abort by guard", entries, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 || events[0].Resolved || !events[1].Resolved || events[0].Key != fmt.Sprintf("canary:%d", pub.Version) {
		t.Errorf("guard events = %+v, want fired then resolved for canary:%d", events, pub.Version)
	}
	_ = base
}

// TestRuleGuardShadowsARuleThatMatchesEveryone: a live rule with a
// hit-rate ceiling that suddenly matches every payment is switched to
// shadow by a new version, audited and alerted.
func TestRuleGuardShadowsARuleThatMatchesEveryone(t *testing.T) {
	h := newHarness(t)
	var events []admin.GuardEvent
	h.api.OnGuard(func(_ context.Context, ev admin.GuardEvent) { events = append(events, ev) })
	h.addRule(rules.Rule{ID: "runaway", Expression: "amount > 0", Action: engine.ActionChallenge, MaxHitRate: 0.3})
	h.must(http.StatusCreated, "POST", "/admin/ruleset/publish", nil, nil)
	v := h.liveVersion()
	for i := 0; i < 20 && h.liveVersion() == v; i++ {
		for _, r := range h.decideN(fmt.Sprintf("rg%d", i), 16) {
			h.api.Observe(context.Background(), r)
		}
	}
	nv := h.liveVersion()
	if nv == v {
		t.Fatal("the rule guard did not act")
	}
	var ver struct {
		Spec rules.Spec `json:"spec"`
	}
	h.must(http.StatusOK, "GET", fmt.Sprintf("/admin/ruleset/versions/%d", nv), nil, &ver)
	for _, r := range ver.Spec.Rules {
		if r.ID == "runaway" && r.Mode != engine.ModeShadow {
			t.Errorf("runaway is %s in version %d, want shadow", r.Mode, nv)
		}
	}
	entries, _, _ := h.api.Audit().Query(context.Background(), admin.AuditQuery{Action: "rule.guard"})
	if len(entries) != 1 || entries[0].Target != "rule:runaway" {
		t.Errorf("audit = %+v, want one rule.guard.shadow of rule:runaway", entries)
	}
	if len(events) != 2 || events[0].Key != "rule:runaway" || !events[1].Resolved {
		t.Errorf("guard events = %+v", events)
	}
	// The draft follows, so the next publish does not bring it back.
	var draft struct {
		Rules []rules.Rule `json:"rules"`
	}
	h.must(http.StatusOK, "GET", "/admin/ruleset/draft", nil, &draft)
	for _, r := range draft.Rules {
		if r.ID == "runaway" && r.Mode != engine.ModeShadow {
			t.Errorf("draft keeps runaway %s", r.Mode)
		}
	}
}

// TestCanaryKeepsWhatItReads: a list the canary's rules read cannot be
// deleted while it runs, though the live version does not read it.
func TestCanaryKeepsWhatItReads(t *testing.T) {
	h := newHarness(t)
	h.must(http.StatusCreated, "PUT", "/admin/lists/canary_only", map[string]any{"kind": "string"}, nil)
	h.addRule(rules.Rule{ID: "canary_list", Expression: `in_list("canary_only", account.id)`, Action: engine.ActionDeny})
	h.must(http.StatusCreated, "POST", "/admin/ruleset/publish", map[string]any{"canary_percent": 5}, nil)
	h.must(http.StatusConflict, "DELETE", "/admin/lists/canary_only", nil, nil)
	h.must(http.StatusOK, "POST", "/admin/ruleset/canary/abort", map[string]any{"reason": "not needed"}, nil)
	var st struct {
		Active bool `json:"active"`
	}
	h.must(http.StatusOK, "GET", "/admin/ruleset/canary", nil, &st)
	if st.Active {
		t.Error("canary active after abort")
	}
	h.must(http.StatusNoContent, "DELETE", "/admin/lists/canary_only", nil, nil)
}
