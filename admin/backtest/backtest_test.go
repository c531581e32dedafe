package backtest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/riskengine/risk/admin/backtest"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
)

var attemptsDef = []features.Definition{
	{Name: "card_attempts_1h", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "1h"},
}

// liveSpec denies above 100.00.
var liveSpec = rules.Spec{Rules: []rules.Rule{
	{ID: "big", Expression: "amount > 10000", Action: engine.ActionDeny},
}}

// candidateJSON denies above 50.00, challenges French cards, and watches
// amounts above 10.00 in shadow mode.
const candidateJSON = `{"rules": {"rules": [
	{"id": "big", "expression": "amount > 5000", "action": "deny"},
	{"id": "fr", "expression": "card.country == \"FR\"", "action": "challenge"},
	{"id": "watch", "expression": "amount > 1000", "action": "score", "score": 10, "mode": "shadow"}
]}}`

// history decides a known set of payments and labels some. It returns
// the live path and the records in decision order; records 0 and 9 lie
// outside [t0, t0+1h).
func history(t *testing.T) (*live, []*engine.Record) {
	t.Helper()
	l := newLive(t, attemptsDef, liveSpec)
	type row struct {
		at       time.Duration
		amount   int64
		country  string
		merchant string
		label    string
	}
	rows := []row{
		{-time.Hour, 500, "FR", "m1", ""},
		{1 * time.Minute, 2000, "US", "m1", ""},
		{2 * time.Minute, 6000, "US", "m1", engine.LabelFraud},
		{3 * time.Minute, 7000, "FR", "m1", engine.LabelLegit},
		{4 * time.Minute, 3000, "FR", "m1", engine.LabelChallengePassed},
		{5 * time.Minute, 20000, "US", "m1", engine.LabelFraud},
		{6 * time.Minute, 12000, "US", "m1", ""},
		{7 * time.Minute, 1000, "US", "m1", engine.LabelLegit},
		{8 * time.Minute, 9000, "US", "m2", engine.LabelChargeback},
		{2 * time.Hour, 15000, "US", "m1", ""},
	}
	var recs []*engine.Record
	for i, r := range rows {
		rec := l.decide(t, t0.Add(r.at), engine.Payment{
			TransactionID: fmt.Sprintf("tx%d", i), Amount: r.amount,
			Card:     engine.Card{Fingerprint: fmt.Sprintf("card%d", i%3), Country: r.country},
			Merchant: engine.Merchant{ID: r.merchant},
		})
		if r.label != "" {
			l.label(t, rec, r.label)
		}
		recs = append(recs, rec)
	}
	return l, recs
}

func body(candidate string, from, to time.Time, extra string) string {
	return fmt.Sprintf(`{"candidate": %s, "from": %q, "to": %q%s}`, candidate, from.Format(time.RFC3339), to.Format(time.RFC3339), extra)
}

// TestBacktestTable replays a rule change that obviously flips known
// decisions and checks the whole result.
func TestBacktestTable(t *testing.T) {
	l, recs := history(t)
	// A feature defined after the history was made: no record carries it.
	if err := l.store.SetDefinitions(context.Background(), append(attemptsDef, features.Definition{
		Name: "card_amount_1h", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Sum, Field: "amount", Window: "1h",
	})); err != nil {
		t.Fatal(err)
	}
	a := newAPI(t, l.backtests(t), l)

	var started backtest.Status
	code := a.do(t, engine.RoleAnalyst, http.MethodPost, "/admin/backtests", body(candidateJSON, t0, t0.Add(time.Hour), ""), &started)
	if code != http.StatusAccepted {
		t.Fatalf("POST status %d, want 202", code)
	}
	if started.ID == "" || (started.State != backtest.StateQueued && started.State != backtest.StateRunning) {
		t.Fatalf("started = %+v", started)
	}
	st := a.wait(t, started.ID)
	if st.State != backtest.StateDone {
		t.Fatalf("state %s (%s), want done", st.State, st.Error)
	}
	if st.CreatedBy != "analyst-key" || st.Candidate.Kind != "inline" || st.Candidate.Rules != 3 {
		t.Errorf("created_by %q, candidate %+v", st.CreatedBy, st.Candidate)
	}
	if st.Progress.Total == 0 || st.Progress.Processed != st.Progress.Total {
		t.Errorf("progress = %+v, want processed == total > 0", st.Progress)
	}

	usd := func(n int64) backtest.Amounts { return backtest.Amounts{"USD": n} }
	flip := func(rec *engine.Record, to engine.Outcome, by string, labels ...string) backtest.Flip {
		return backtest.Flip{
			DecisionID: rec.ID, TransactionID: rec.TransactionID, EvaluatedAt: rec.EvaluatedAt, Amount: rec.Payment.Amount,
			Currency: "USD", MerchantID: rec.Payment.Merchant.ID, Old: rec.Outcome, New: to,
			OldDeterminedBy: "default", NewDeterminedBy: by, Labels: labels,
		}
	}
	want := &backtest.Result{
		Replayed: 8, Changed: 4,
		Transitions: []backtest.Transition{
			{From: engine.Allow, To: engine.Allow, Count: 2, Amounts: usd(3000)},
			{From: engine.Allow, To: engine.Challenge, Count: 1, Amounts: usd(3000)},
			{From: engine.Allow, To: engine.Deny, Count: 3, Amounts: usd(22000)},
			{From: engine.Deny, To: engine.Deny, Count: 2, Amounts: usd(32000)},
		},
		Rules: []backtest.RuleHits{
			{RuleStats: backtest.RuleStats{ID: "big", Mode: engine.ModeActive, Action: engine.ActionDeny, Hits: 5, Decisive: 5}, OldHits: 2},
			{RuleStats: backtest.RuleStats{ID: "fr", Mode: engine.ModeActive, Action: engine.ActionChallenge, Hits: 2, Decisive: 1}},
			{RuleStats: backtest.RuleStats{ID: "watch", Mode: engine.ModeShadow, Action: engine.ActionScore, Hits: 7}},
		},
		Labels: backtest.LabelReport{
			Bad: 3, Good: 3, Unlabelled: 2,
			Old:         backtest.Metrics{Caught: 1, Missed: 2, GoodAllowed: 3, Precision: ptr(1), Recall: ptr(1.0 / 3)},
			New:         backtest.Metrics{Caught: 3, GoodBlocked: 2, GoodAllowed: 1, Precision: ptr(0.6), Recall: ptr(1)},
			NewlyCaught: 2, NewlyBlockedGood: 2,
		},
		Flipped: []backtest.Flip{
			flip(recs[2], engine.Deny, "rule:big", engine.LabelFraud),
			flip(recs[3], engine.Deny, "rule:big", engine.LabelLegit),
			flip(recs[4], engine.Challenge, "rule:fr", engine.LabelChallengePassed),
			flip(recs[8], engine.Deny, "rule:big", engine.LabelChargeback),
		},
		MissingFeatures: map[string]int64{"card_amount_1h": 8},
	}
	if got, want := jsonOf(t, st.Result), jsonOf(t, want); got != want {
		t.Errorf("result:\n%s\nwant:\n%s", got, want)
	}
}

func TestBacktestFilters(t *testing.T) {
	l, _ := history(t)
	a := newAPI(t, l.backtests(t), l)
	tests := []struct {
		name         string
		extra        string
		wantReplayed int64
		wantChanged  int64
	}{
		{"merchant", `, "merchant_id": "m2"`, 1, 1},
		{"decision", `, "decision": "deny"`, 2, 0},
		{"both", `, "merchant_id": "m1", "decision": "allow"`, 5, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st backtest.Status
			if code := a.do(t, engine.RoleAnalyst, http.MethodPost, "/admin/backtests", body(candidateJSON, t0, t0.Add(time.Hour), tt.extra), &st); code != http.StatusAccepted {
				t.Fatalf("status %d", code)
			}
			st = a.wait(t, st.ID)
			if st.Result == nil || st.Result.Replayed != tt.wantReplayed || st.Result.Changed != tt.wantChanged {
				t.Errorf("result %+v, want replayed %d changed %d", st.Result, tt.wantReplayed, tt.wantChanged)
			}
		})
	}
}

// TestBacktestVersion replays a published version and the live one.
func TestBacktestVersion(t *testing.T) {
	l, _ := history(t)
	spec := rules.Spec{Rules: []rules.Rule{{ID: "all", Expression: "true", Action: engine.ActionChallenge}}}
	if _, err := l.versions.Publish(spec, l.env(), "test", "", nil); err != nil {
		t.Fatal(err)
	}
	b := l.backtests(t)
	for _, tt := range []struct {
		version     int64
		wantChanged int64
	}{{1, 0}, {2, 8}} {
		req := backtest.Request{Candidate: backtest.Candidate{Version: tt.version}, From: t0, To: t0.Add(time.Hour)}
		res, err := b.Run(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Replayed != 8 || res.Changed != tt.wantChanged {
			t.Errorf("version %d: replayed %d changed %d, want 8 and %d", tt.version, res.Replayed, res.Changed, tt.wantChanged)
		}
	}
}

func TestBacktestDraft(t *testing.T) {
	l, _ := history(t)
	draft := rules.Spec{Rules: []rules.Rule{{ID: "none", Expression: "false", Action: engine.ActionDeny}}}
	b := l.backtests(t, func(c *backtest.Config) {
		c.Draft = func(context.Context) (rules.Spec, error) { return draft, nil }
	})
	a := newAPI(t, b, l)
	var st backtest.Status
	if code := a.do(t, engine.RoleAnalyst, http.MethodPost, "/admin/backtests", body(`{"draft": true}`, t0, t0.Add(time.Hour), ""), &st); code != http.StatusAccepted {
		t.Fatalf("status %d", code)
	}
	st = a.wait(t, st.ID)
	// The draft allows everything: the two denials flip to allow.
	if st.Candidate.Kind != "draft" || st.Result.Changed != 2 || st.Result.Labels.NewlyMissed != 1 {
		t.Errorf("candidate %+v result %+v", st.Candidate, st.Result)
	}
}

// TestBacktestLeavesLiveStateAlone checks that a backtest neither adds
// decisions nor changes stored ones or feature values.
func TestBacktestLeavesLiveStateAlone(t *testing.T) {
	l, recs := history(t)
	p := recs[1].Payment
	before, err := l.store.Features(context.Background(), &p, nil)
	if err != nil {
		t.Fatal(err)
	}
	seq := l.store.Stats().LastSeq
	var req backtest.Request
	req.Candidate.Spec = &rules.Spec{Rules: []rules.Rule{{ID: "all", Expression: "true", Action: engine.ActionDeny}}}
	req.From, req.To = t0.Add(-24*time.Hour), t0.Add(24*time.Hour)
	if _, err := l.backtests(t).Run(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	after, _ := l.store.Features(context.Background(), &p, nil)
	if fmt.Sprint(before) != fmt.Sprint(after) || l.store.Stats().LastSeq != seq {
		t.Errorf("features %v -> %v, last seq %d -> %d", before, after, seq, l.store.Stats().LastSeq)
	}
	got, err := l.store.Get(context.Background(), recs[1].ID)
	if err != nil || got.Outcome != recs[1].Outcome {
		t.Errorf("stored decision changed: %v %v", got, err)
	}
}

func TestBacktestBadInput(t *testing.T) {
	l, _ := history(t)
	a := newAPI(t, l.backtests(t), l)
	from, to := t0, t0.Add(time.Hour)
	tests := []struct {
		name      string
		role      engine.Role
		method    string
		path      string
		body      string
		wantCode  int
		wantField string
		wantError string
	}{
		{"unknown version", engine.RoleAnalyst, http.MethodPost, "/admin/backtests", body(`{"version": 99}`, from, to, ""), 404, "", "not_found"},
		{"inverted range", engine.RoleAnalyst, http.MethodPost, "/admin/backtests", body(`{"version": 1}`, to, from, ""), 400, "from", "invalid_range"},
		{"empty range", engine.RoleAnalyst, http.MethodPost, "/admin/backtests", body(`{"version": 1}`, from, from, ""), 400, "from", "invalid_range"},
		{"missing to", engine.RoleAnalyst, http.MethodPost, "/admin/backtests", `{"candidate": {"version": 1}, "from": "2026-10-05T09:00:00Z"}`, 400, "to", "required"},
		{"bad time", engine.RoleAnalyst, http.MethodPost, "/admin/backtests", `{"candidate": {"version": 1}, "from": "yesterday", "to": "2026-10-05T09:00:00Z"}`, 400, "from", "invalid_time"},
		{"no candidate", engine.RoleAnalyst, http.MethodPost, "/admin/backtests", `{"from": "2026-10-05T09:00:00Z", "to": "2026-10-05T10:00:00Z"}`, 400, "candidate", "required"},
		{"two candidates", engine.RoleAnalyst, http.MethodPost, "/admin/backtests", body(`{"version": 1, "draft": true}`, from, to, ""), 400, "candidate", "invalid_candidate"},
		{"version zero", engine.RoleAnalyst, http.MethodPost, "/admin/backtests", body(`{"version": 0}`, from, to, ""), 400, "candidate.version", "invalid_version"},
		{"bad decision", engine.RoleAnalyst, http.MethodPost, "/admin/backtests", body(`{"version": 1}`, from, to, `, "decision": "block"`), 400, "decision", "invalid_decision"},
		{"unknown field", engine.RoleAnalyst, http.MethodPost, "/admin/backtests", body(`{"version": 1}`, from, to, `, "merchant": "m1"`), 400, "merchant", "unknown_field"},
		{"not json", engine.RoleAnalyst, http.MethodPost, "/admin/backtests", `{"candidate":`, 400, "", "invalid_json"},
		{"rules do not compile", engine.RoleAnalyst, http.MethodPost, "/admin/backtests", body(`{"rules": {"rules": [{"id": "x", "expression": "amount >", "action": "deny"}]}}`, from, to, ""), 422, "", "unprocessable"},
		{"no draft store", engine.RoleAnalyst, http.MethodPost, "/admin/backtests", body(`{"draft": true}`, from, to, ""), 404, "", "not_found"},
		{"unknown backtest", engine.RoleAnalyst, http.MethodGet, "/admin/backtests/bt_nope", "", 404, "", "not_found"},
		{"cancel unknown", engine.RoleAnalyst, http.MethodDelete, "/admin/backtests/bt_nope", "", 404, "", "not_found"},
		{"gateway may not", engine.RoleGateway, http.MethodPost, "/admin/backtests", body(`{"version": 1}`, from, to, ""), 403, "", "forbidden"},
		{"auditor may not", engine.RoleAuditor, http.MethodGet, "/admin/backtests", "", 403, "", "forbidden"},
		{"unauthenticated", "nobody", http.MethodGet, "/admin/backtests", "", 401, "", "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got struct {
				Code  string `json:"code"`
				Field string `json:"field"`
			}
			code := a.do(t, tt.role, tt.method, tt.path, tt.body, &got)
			if code != tt.wantCode || got.Field != tt.wantField || got.Code != tt.wantError {
				t.Errorf("got %d %q field %q, want %d %q field %q", code, got.Code, got.Field, tt.wantCode, tt.wantError, tt.wantField)
			}
		})
	}
}

// endless is a decision log that never ends: it produces a decision a
// millisecond until the scan stops.
type endless struct{}

func (endless) ScanRecords(ctx context.Context, from uint64, fn func(*engine.Record) error) error {
	for seq := max(from, 1); ; seq++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec := &engine.Record{Seq: seq, Payment: engine.Payment{TransactionID: fmt.Sprint(seq), Amount: 100, Currency: "USD"}}
		rec.ID, rec.Outcome, rec.EvaluatedAt = fmt.Sprint("dec", seq), engine.Allow, t0.Add(time.Duration(seq)*time.Millisecond)
		if err := fn(rec); err != nil {
			return err
		}
	}
}

func TestBacktestCancel(t *testing.T) {
	b := backtest.New(backtest.Config{History: endless{}, MaxRunning: 1, YieldEvery: 1})
	// A year of decisions a millisecond apart: far too many to finish.
	req := backtest.Request{From: t0, To: t0.Add(365 * 24 * time.Hour)}
	req.Candidate.Spec = &rules.Spec{Rules: []rules.Rule{{ID: "x", Expression: "amount > 50", Action: engine.ActionDeny}}}
	ctx := context.Background()
	running, err := b.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	queued, err := b.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second) // a low-priority thread on a loaded machine
	for {
		st, _ := b.Get(running.ID)
		if st.State == backtest.StateRunning && st.Progress.Processed > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backtest never made progress: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
	if st, _ := b.Get(queued.ID); st.State != backtest.StateQueued {
		t.Errorf("second backtest is %s, want queued behind the first (MaxRunning 1)", st.State)
	}
	for _, id := range []string{queued.ID, running.ID} {
		st, err := b.Cancel(id)
		if err != nil || st.State != backtest.StateCancelled {
			t.Errorf("Cancel(%s) = %s, %v; want cancelled", id, st.State, err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.Close(cctx); err != nil {
		t.Fatalf("backtests did not stop after cancel: %v", err)
	}
	st, _ := b.Get(running.ID)
	if st.State != backtest.StateCancelled || st.Result != nil || st.Progress.Processed >= st.Progress.Total {
		t.Errorf("after cancel: state %s, result %v, progress %+v", st.State, st.Result, st.Progress)
	}
	if _, err := b.Start(ctx, req); !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("Start after Close = %v, want ErrUnavailable", err)
	}
}

func TestBacktestBusy(t *testing.T) {
	b := backtest.New(backtest.Config{History: endless{}, MaxActive: 1})
	t.Cleanup(func() { b.Close(context.Background()) })
	req := backtest.Request{From: t0, To: t0.Add(365 * 24 * time.Hour)}
	req.Candidate.Spec = &rules.Spec{}
	if _, err := b.Start(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Start(context.Background(), req); !errors.Is(err, backtest.ErrBusy) {
		t.Errorf("second Start = %v, want ErrBusy", err)
	}
}
