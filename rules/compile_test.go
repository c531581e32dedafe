package rules_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/rules"
)

var testEnv = rules.Env{Features: []string{"card_attempts_1h", "device_distinct_cards_24h"}}

func compileErrors(t *testing.T, err error) []*rules.Error {
	t.Helper()
	var ce *rules.CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *rules.CompileError", err)
	}
	if !errors.Is(err, engine.ErrUnprocessable) {
		t.Errorf("compile error does not match ErrUnprocessable")
	}
	return ce.Errors
}

func TestCheckExpressionMessages(t *testing.T) {
	tests := []struct {
		expr string
		want string // Error() of the single error, verbatim
	}{
		{`card.contry == "US"`, "unknown name `card.contry`; did you mean `card.country` (1:6)"},
		{`cardd.country == "US"`, "unknown name `cardd`; did you mean `card` (1:1)"},
		{`features.card_attempt_1h > 3`, "unknown name `features.card_attempt_1h`; did you mean `features.card_attempts_1h` (1:10)"},
		{"amount > 100 &&\n  device.ip_contry == \"FR\"", "unknown name `device.ip_contry`; did you mean `device.ip_country` (2:10)"},
		{`amount + 1`, "expected bool, but got int (1:1)"},
		{`amount > "ten"`, "invalid operation: > (mismatched types int and string) (1:8)"},
		{`amount > 1 &&`, "unexpected token EOF (1:13)"},
		{`zzzz > 1`, "unknown name `zzzz` (1:1)"},
		{`in_list("vip")`, "not enough arguments to call in_list (1:1)"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			errs := compileErrors(t, rules.CheckExpression(tt.expr, testEnv))
			if len(errs) != 1 {
				t.Fatalf("got %d errors %v, want 1", len(errs), errs)
			}
			if got := errs[0].Error(); got != tt.want {
				t.Errorf("error =\n  %s\nwant\n  %s", got, tt.want)
			}
		})
	}
}

func TestCheckExpressionValid(t *testing.T) {
	for _, src := range []string{
		`amount > 10000 && card.country != device.ip_country`,
		`features.card_attempts_1h >= 5`,
		`in_list("blocked_cards", card.fingerprint)`,
		`ip_in_cidr(device.ip, "10.0.0.0/8")`,
		`hour_of_day(occurred_at, "Europe/Paris") < 6 && day_of_week(occurred_at, "UTC") == 0`,
		`attributes.channel == "web" && attributes.items > 2`,
		`let big = amount > 500; big && limits.single_max > 0`,
		`account.age_days < 7 && days_between(account.created_at, now) < 7`,
		`len(card.bin) == 6 && card.bin startsWith "4"`,
	} {
		if err := rules.CheckExpression(src, testEnv); err != nil {
			t.Errorf("CheckExpression(%q) = %v", src, err)
		}
	}
}

func TestCompileAllOrNothing(t *testing.T) {
	spec := rules.Spec{ChallengeThreshold: 40, DenyThreshold: 80, Rules: []rules.Rule{
		{ID: "ok", Expression: "amount > 1", Action: engine.ActionDeny},
		{ID: "bad_expr", Expression: "amount >", Action: engine.ActionDeny},
		{ID: "bad_action", Expression: "true", Action: "block"},
		{ID: "ok", Expression: "true", Action: engine.ActionScore},
		{ID: "", Expression: "true", Action: engine.ActionScore},
	}}
	set, err := rules.Compile(spec, testEnv, 1)
	if set != nil {
		t.Fatal("Compile returned a set despite errors")
	}
	var got []string
	for _, e := range compileErrors(t, err) {
		got = append(got, e.Rule+"/"+e.Field)
	}
	want := []string{"bad_expr/expression", "bad_action/action", "ok/id", "/id"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("errors at %v, want %v", got, want)
	}
}

func TestCompileThresholds(t *testing.T) {
	_, err := rules.Compile(rules.Spec{ChallengeThreshold: 50, DenyThreshold: 10}, testEnv, 1)
	errs := compileErrors(t, err)
	if errs[0].Field != "deny_threshold" {
		t.Errorf("field = %q, want deny_threshold", errs[0].Field)
	}
}

type lists map[string]map[string]bool

func (l lists) Contains(list, v string) bool { return l[list][v] }

func TestEvaluate(t *testing.T) {
	env := rules.Env{Features: []string{"card_attempts_1h"}, Lists: lists{"blocked": {"fp_bad": true}}}
	spec := rules.Spec{Rules: []rules.Rule{
		{ID: "blocked", Expression: `in_list("blocked", card.fingerprint)`, Action: engine.ActionDeny, Reason: "blocked"},
		{ID: "velocity", Expression: `features.card_attempts_1h >= 3`, Action: engine.ActionChallenge},
		{ID: "nil_access", Expression: `attributes.missing.deep == 1`, Action: engine.ActionDeny},
		{ID: "div_zero", Expression: `amount % (amount - amount) == 0`, Action: engine.ActionScore, Score: 10},
		{ID: "bad_zone", Expression: `hour_of_day(occurred_at, "Mars/Olympus") > 1`, Action: engine.ActionScore, Score: 10},
		{ID: "shadow", Expression: `amount > 1`, Action: engine.ActionDeny, Mode: engine.ModeShadow},
		{ID: "off", Expression: `true`, Action: engine.ActionDeny, Mode: engine.ModeDisabled},
		{ID: "cidr", Expression: `ip_in_cidr(device.ip, "203.0.113.0/24")`, Action: engine.ActionScore, Score: 5},
		{ID: "night", Expression: `hour_of_day(occurred_at, "Asia/Tokyo") == 19`, Action: engine.ActionScore, Score: 1},
	}}
	set, err := rules.Compile(spec, env, 3)
	if err != nil {
		t.Fatal(err)
	}
	p := engine.Payment{
		TransactionID: "tx", Amount: 100, Currency: "USD",
		OccurredAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		Card:       engine.Card{Fingerprint: "fp_bad"}, Device: engine.Device{IP: "203.0.113.9"},
		Attributes: map[string]any{"zero": 0.0},
	}
	in := engine.Input{Payment: &p, Features: []engine.FeatureValue{{Name: "card_attempts_1h", Value: 3}}, Now: p.OccurredAt}
	got := set.Evaluate(context.Background(), &in, nil)
	type res struct {
		matched bool
		errored bool
	}
	want := map[string]res{
		"blocked": {true, false}, "velocity": {true, false}, "nil_access": {false, true},
		"div_zero": {false, true}, "bad_zone": {false, true}, "shadow": {true, false},
		"cidr": {true, false}, "night": {true, false},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d results, want %d (disabled rules are not evaluated)", len(got), len(want))
	}
	for _, r := range got {
		w, ok := want[r.ID]
		if !ok {
			t.Errorf("unexpected result for %s", r.ID)
			continue
		}
		if r.Matched != w.matched || (r.Error != "") != w.errored {
			t.Errorf("%s: matched=%v error=%q, want matched=%v errored=%v", r.ID, r.Matched, r.Error, w.matched, w.errored)
		}
	}
}

func TestEvaluateCancelled(t *testing.T) {
	set, err := rules.Compile(rules.Spec{Rules: []rules.Rule{{ID: "a", Expression: "true", Action: engine.ActionDeny}}}, testEnv, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := engine.Payment{TransactionID: "t", Amount: 1, Currency: "USD"}
	got := set.Evaluate(ctx, &engine.Input{Payment: &p}, nil)
	if got[0].Matched || !strings.HasPrefix(got[0].Error, "not evaluated") {
		t.Errorf("cancelled evaluation = %+v", got[0])
	}
}

func TestMemoryBudget(t *testing.T) {
	set, err := rules.Compile(rules.Spec{Rules: []rules.Rule{
		{ID: "hog", Expression: `len(map(1..1000000, {# * 2})) > 0`, Action: engine.ActionDeny},
	}}, testEnv, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := engine.Payment{TransactionID: "t", Amount: 1, Currency: "USD"}
	got := set.Evaluate(context.Background(), &engine.Input{Payment: &p}, nil)
	if got[0].Matched || !strings.Contains(got[0].Error, "memory budget exceeded") {
		t.Errorf("memory hog = %+v, want a memory budget error", got[0])
	}
}

func TestSampleCompiles(t *testing.T) {
	f, err := rules.ParseFile(rules.Sample())
	if err != nil {
		t.Fatal(err)
	}
	env := rules.Env{Features: []string{
		"card_attempts_10m", "card_attempts_1h", "card_declines_24h", "card_distinct_accounts_7d",
		"device_distinct_cards_24h", "device_attempts_24h", "ip_attempts_1h", "account_amount_7d",
		"account_payments_30d", "account_avg_amount_30d", "account_merchant_max_24h", "email_first_seen",
	}}
	if _, err := rules.Compile(f.Spec, env, 1); err != nil {
		t.Fatalf("sample rules: %v", err)
	}
	if len(f.Lists) == 0 {
		t.Error("sample has no lists")
	}
}

func TestParseFileRejectsUnknownKeys(t *testing.T) {
	_, err := rules.ParseFile([]byte("challenge_threshold: 1\nrulez: []\n"))
	if err == nil || !strings.Contains(err.Error(), "rulez") {
		t.Errorf("err = %v, want one naming rulez", err)
	}
}

// TestFlattenedAndNestedAgree: rule programs read fields of account, card,
// device, merchant, features and limits by their dotted names; the forms
// that keep the nested path (optional chaining, a computed key, the root
// map itself) must see the same values.
func TestFlattenedAndNestedAgree(t *testing.T) {
	env := rules.Env{Features: []string{"card_attempts_1h", "unset_feature"}}
	exprs := []string{
		`card.country == "GB"`, `card?.country == "GB"`, `card["coun" + "try"] == "GB"`, `card["country"] == "GB"`,
		`account.age_days > 300`, `account?.age_days > 300`,
		`features.card_attempts_1h == 3`, `features?.card_attempts_1h == 3`, `features["card_" + "attempts_1h"] == 3`,
		`features.unset_feature == 0`, `features?.unset_feature == 0`,
		`limits.single_max == 5000`, `limits?.single_max == 5000`, `limits.trust > 1.4`,
		`merchant.mcc == "5999"`, `"mcc" in merchant`, `len(card) > 2`,
		`device.ip_country != card.country`, `attributes.channel == "web"`,
	}
	var spec rules.Spec
	for i, src := range exprs {
		spec.Rules = append(spec.Rules, rules.Rule{ID: fmt.Sprintf("r%d", i), Expression: src, Action: engine.ActionScore, Score: 1})
	}
	set, err := rules.Compile(spec, env, 1)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	p := engine.Payment{
		TransactionID: "tx", Amount: 100, Currency: "USD", OccurredAt: now,
		Account:    engine.Account{ID: "acc", CreatedAt: now.Add(-400 * 24 * time.Hour)},
		Card:       engine.Card{Fingerprint: "fp", BIN: "411111", Country: "GB"},
		Device:     engine.Device{IPCountry: "FR"},
		Merchant:   engine.Merchant{MCC: "5999"},
		Attributes: map[string]any{"channel": "web"},
	}
	in := engine.Input{
		Payment:  &p,
		Features: []engine.FeatureValue{{Name: "card_attempts_1h", Value: 3}},
		Limits:   &engine.Limits{SingleMax: 5000, Trust: 1.5},
		Now:      now,
	}
	// Evaluate twice through the pooled environment: the second run must
	// not see values left by the first.
	for round := range 2 {
		for i, r := range set.Evaluate(context.Background(), &in, nil) {
			if !r.Matched || r.Error != "" {
				t.Errorf("round %d: %s = matched %v, error %q; want matched", round, exprs[i], r.Matched, r.Error)
			}
		}
	}
	p.Card.Country = "US"
	in.Features = nil
	for i, r := range set.Evaluate(context.Background(), &in, nil) {
		if want := !strings.Contains(exprs[i], "GB") && !strings.Contains(exprs[i], "== 3"); r.Matched != want {
			t.Errorf("after change: %s = %v, want %v", exprs[i], r.Matched, want)
		}
	}
}

// TestCompileReviewAction: a review rule compiles from YAML and its result
// asks for review without changing the outcome.
func TestCompileReviewAction(t *testing.T) {
	f, err := rules.ParseFile([]byte("rules:\n  - id: big\n    expression: amount > 100\n    action: review\n"))
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Compile(f.Spec, testEnv, 1)
	if err != nil {
		t.Fatal(err)
	}
	rec := engine.Record{Payment: engine.Payment{Amount: 500, Currency: "EUR"}}
	rec.Rules = set.Evaluate(context.Background(), &engine.Input{Payment: &rec.Payment}, nil)
	rec.Outcome, _, _, _ = engine.Combine(rec.Rules, set.Thresholds())
	if !rec.ReviewRequested() || rec.Outcome != engine.Allow {
		t.Errorf("review requested %v, outcome %s; want true, allow", rec.ReviewRequested(), rec.Outcome)
	}
}
