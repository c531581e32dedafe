package rules_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/rules"
)

var fuzzEnv = rules.Env{
	Features: []string{"card_attempts_10m", "card_declines_24h", "device_distinct_cards_24h", "account_avg_amount_30d"},
	Lists:    lists{"blocked_cards": {"fp_bad": true}},
}

// FuzzCompile compiles any expression as a rule, a feature filter and a
// payment predicate. Each either compiles or returns a *rules.CompileError
// whose every error has a message and a position inside the source; it
// never panics. A rule that compiles also runs without panicking.
//
// Seeds: testdata/fuzz/FuzzCompile and the expressions below.
// Run: go test -run='^$' -fuzz=FuzzCompile -fuzztime=10s ./rules
func FuzzCompile(f *testing.F) {
	for _, src := range []string{
		`amount > 10000 && card.country != device.ip_country`,
		`in_list("blocked_cards", card.fingerprint)`,
		`features.card_attempts_10m >= 4`,
		`limits.daily_max > 0 && amount > limits.daily_remaining`,
		`hour_of_day(occurred_at, "Europe/Paris") < 5`,
		`ip_in_cidr(device.ip, "10.0.0.0/8")`,
		`account.age_days < 7 && amount > 5 * features.account_avg_amount_30d`,
		`attributes.channel == "web" || merchant.mcc in ["7995", "6051"]`,
		`card.contry == "US"`,
		`amount > 1 &&`,
		`amount + 1`,
		`let x = amount; x > 1`,
		`all(1..1000000, # > 0)`,
		"amount > 1 &&\n  device.ip_contry == \"FR\"",
		``,
	} {
		f.Add(src)
	}
	p := engine.Payment{
		TransactionID: "tx", Amount: 100, Currency: "USD", OccurredAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		Card: engine.Card{Fingerprint: "fp_bad", Country: "US"}, Device: engine.Device{IP: "203.0.113.9", IPCountry: "FR"},
		Attributes: map[string]any{"channel": "web", "items": 3.0, "first": true},
	}
	in := &engine.Input{Payment: &p, Limits: &engine.Limits{}, Now: p.OccurredAt}
	f.Fuzz(func(t *testing.T, src string) {
		lines := strings.Count(src, "\n") + 1
		check := func(what string, err error) bool {
			t.Helper()
			if err == nil {
				return true
			}
			var ce *rules.CompileError
			if !errors.As(err, &ce) || len(ce.Errors) == 0 {
				t.Fatalf("%s: %T %v, want a *rules.CompileError", what, err, err)
			}
			for _, e := range ce.Errors {
				if e.Message == "" {
					t.Fatalf("%s: an error without a message: %+v", what, e)
				}
				if e.Line < 0 || e.Line > lines || e.Column < 0 || (e.Line == 0) != (e.Column == 0) {
					t.Fatalf("%s: position %d:%d outside %d line(s): %v", what, e.Line, e.Column, lines, e)
				}
			}
			return false
		}
		set, err := rules.Compile(rules.Spec{Rules: []rules.Rule{{ID: "r", Expression: src, Action: engine.ActionDeny}}}, fuzzEnv, 1)
		compiled := check("Compile", err)
		if checked := check("CheckExpression", rules.CheckExpression(src, fuzzEnv)); checked != compiled {
			t.Fatalf("Compile ok %v, CheckExpression ok %v", compiled, checked)
		}
		if compiled {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if res := set.Evaluate(ctx, in, nil); len(res) != 1 {
				t.Fatalf("%d results for one rule", len(res))
			}
		}
		_, err = rules.CompilePredicate(src)
		check("CompilePredicate", err)
		_, err = rules.CompilePaymentPredicate(src)
		check("CompilePaymentPredicate", err)
	})
}
