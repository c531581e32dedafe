package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/server"
	"github.com/riskengine/risk/server/openapi/openapitest"
)

// statsStack serves the rule statistics over a real store.
type statsStack struct {
	store *features.Store
	http  *httptest.Server
}

func newStatsStack(t *testing.T) *statsStack {
	t.Helper()
	store := features.New(features.Options{Dir: t.TempDir()})
	if err := store.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{Decisions: store})
	admin.RegisterStats(srv.Group("/admin"), srv.Require, store, nil)
	s := &statsStack{store: store, http: httptest.NewServer(openapitest.Handler(t, srv.Handler()))}
	t.Cleanup(func() {
		s.http.Close()
		_ = store.Close(context.Background())
	})
	return s
}

// seed commits a decision at `at` with results for rules a (active), b
// (shadow) and c (active, never matching), then attaches labels.
func (s *statsStack) seed(t *testing.T, n int, at time.Time, hitA, errA, hitB bool, labels ...string) {
	t.Helper()
	rec := &engine.Record{Payment: engine.Payment{TransactionID: fmt.Sprintf("tx_stats_%d", n), Amount: 1, Currency: "USD", OccurredAt: at}}
	rec.ID = engine.NewID("dec_", at)
	rec.TransactionID, rec.EvaluatedAt, rec.Outcome = rec.Payment.TransactionID, at, engine.Allow
	rec.Rules = []engine.RuleResult{
		{RuleInfo: &engine.RuleInfo{ID: "a", Mode: engine.ModeActive, Action: engine.ActionChallenge}, Matched: hitA || errA},
		{RuleInfo: &engine.RuleInfo{ID: "b", Mode: engine.ModeShadow, Action: engine.ActionDeny}, Matched: hitB},
		{RuleInfo: &engine.RuleInfo{ID: "c", Mode: engine.ModeActive, Action: engine.ActionDeny}},
	}
	if errA {
		rec.Rules[0].Error = "boom"
	}
	ctx := context.Background()
	if err := s.store.Commit(ctx, rec); err != nil {
		t.Fatal(err)
	}
	for _, l := range labels {
		if _, _, err := s.store.AddLabel(ctx, rec.ID, engine.Label{Label: l}); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *statsStack) get(t *testing.T, path string, out any) int {
	t.Helper()
	resp, err := http.Get(s.http.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("GET %s: decode %q: %v", path, data, err)
	}
	return resp.StatusCode
}

type statsJSON struct {
	Rule      string `json:"rule"`
	Evaluated int    `json:"evaluated"`
	Hits      struct {
		Active, Shadow, Total int
	} `json:"hits"`
	Labelled       map[string]int `json:"labelled"`
	Fraud          int            `json:"fraud"`
	Legit          int            `json:"legit"`
	FraudShare     *float64       `json:"fraud_share"`
	LegitShare     *float64       `json:"legit_share"`
	Precision      *float64       `json:"precision"`
	FalsePositives int            `json:"false_positives"`
}

func statsPtr(v float64) *float64 { return &v }

func statsEq(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func TestRuleStatsOnSeededHistory(t *testing.T) {
	s := newStatsStack(t)
	day := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	n := 0
	next := func() int { n++; return n }
	// Rule a: 10 hits. Bad: 3 fraud, 1 fraud+chargeback, 1
	// challenge_passed+chargeback; good: 2 legit, 1 challenge_passed;
	// 2 unlabelled.
	for _, labels := range [][]string{
		{"fraud"}, {"fraud"}, {"fraud"}, {"fraud", "chargeback"}, {"challenge_passed", "chargeback"},
		{"legit"}, {"legit"}, {"challenge_passed"}, nil, nil,
	} {
		s.seed(t, next(), day.Add(time.Duration(n)*time.Minute), true, false, false, labels...)
	}
	// Rule b (shadow): 4 hits, 1 legit.
	for i := range 4 {
		var labels []string
		if i == 0 {
			labels = []string{"legit"}
		}
		s.seed(t, next(), day.Add(time.Duration(n)*time.Minute), false, false, true, labels...)
	}
	s.seed(t, next(), day.Add(time.Hour), false, true, false, "fraud")                           // a errored: no hit
	s.seed(t, next(), time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), true, false, false, "fraud") // outside the period
	// Enough quiet decisions to need several pages.
	var wg sync.WaitGroup
	for i := range 600 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.seed(t, 1000+i, day.Add(time.Duration(i)*time.Second), false, false, false)
		}()
	}
	wg.Wait()

	const period = "?from=2026-11-01T00:00:00Z&to=2026-11-22T00:00:00Z"
	var all struct {
		Decisions int          `json:"decisions"`
		Truncated bool         `json:"truncated"`
		Rules     []*statsJSON `json:"rules"`
	}
	if code := s.get(t, "/admin/rules/stats"+period, &all); code != http.StatusOK {
		t.Fatalf("GET stats: %d", code)
	}
	if all.Decisions != 615 || all.Truncated || len(all.Rules) != 3 {
		t.Fatalf("decisions %d truncated %v rules %d, want 615, false, 3", all.Decisions, all.Truncated, len(all.Rules))
	}
	want := map[string]statsJSON{
		"a": {Evaluated: 615, Fraud: 5, Legit: 3, FalsePositives: 3, FraudShare: statsPtr(0.5), LegitShare: statsPtr(0.3), Precision: statsPtr(0.625),
			Labelled: map[string]int{"fraud": 4, "chargeback": 2, "legit": 2, "challenge_passed": 2}},
		"b": {Evaluated: 615, Legit: 1, FalsePositives: 1, FraudShare: statsPtr(0), LegitShare: statsPtr(0.25), Precision: statsPtr(0),
			Labelled: map[string]int{"legit": 1}},
		"c": {Evaluated: 615, Labelled: map[string]int{}},
	}
	want["a"] = func(w statsJSON) statsJSON { w.Hits.Active, w.Hits.Total = 10, 10; return w }(want["a"])
	want["b"] = func(w statsJSON) statsJSON { w.Hits.Shadow, w.Hits.Total = 4, 4; return w }(want["b"])
	for i, got := range all.Rules {
		id := []string{"a", "b", "c"}[i]
		w := want[id]
		if got.Rule != id || got.Evaluated != w.Evaluated || got.Hits != w.Hits || got.Fraud != w.Fraud || got.Legit != w.Legit ||
			got.FalsePositives != w.FalsePositives || !statsEq(got.FraudShare, w.FraudShare) || !statsEq(got.LegitShare, w.LegitShare) ||
			!statsEq(got.Precision, w.Precision) || fmt.Sprint(got.Labelled) != fmt.Sprint(w.Labelled) {
			t.Errorf("rule %s: got %+v, want %+v", id, *got, w)
		}
	}

	var one struct {
		Decisions int       `json:"decisions"`
		Stats     statsJSON `json:"stats"`
	}
	if code := s.get(t, "/admin/rules/a/stats"+period, &one); code != http.StatusOK || one.Stats.Hits.Total != 10 || *one.Stats.Precision != 0.625 {
		t.Errorf("GET rules/a/stats: %d %+v", code, one)
	}
	if code := s.get(t, "/admin/rules/zzz/stats"+period, &one); code != http.StatusOK || one.Stats.Rule != "zzz" || one.Stats.Hits.Total != 0 || one.Stats.Precision != nil {
		t.Errorf("GET rules/zzz/stats: %d %+v", code, one)
	}
	for _, q := range []string{"?from=2026-11-22T00:00:00Z&to=2026-11-01T00:00:00Z", "?from=yesterday", "?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"} {
		var e struct{ Field string }
		if code := s.get(t, "/admin/rules/stats"+q, &e); code != http.StatusBadRequest || (e.Field != "from" && e.Field != "to") {
			t.Errorf("GET stats%s: %d field %q, want 400", q, code, e.Field)
		}
	}
}
