package rules_test

import (
	"errors"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/rules"
)

func TestCompilePaymentPredicate(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	p := engine.Payment{
		TransactionID: "t", Amount: 5000, Currency: "EUR", OccurredAt: now,
		Account:    engine.Account{ID: "a", CreatedAt: now.Add(-72 * time.Hour), Country: "FR"},
		Attributes: map[string]any{"channel": "app"},
	}
	tests := []struct {
		src  string
		want bool
	}{
		{`account.age_days < 7`, true},
		{`account.age_days >= 3 && account.age_days < 3.1`, true},
		{`account.country in ["DE", "FR"] && currency == "EUR"`, true},
		{`attributes.channel == "web"`, false},
		{`merchant.mcc == "7995"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			pred, err := rules.CompilePaymentPredicate(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pred.MatchPayment(&p)
			if err != nil || got != tt.want {
				t.Errorf("MatchPayment = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	pred, err := rules.CompilePaymentPredicate(`attributes.missing.deep == 1`)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := pred.MatchPayment(&p); ok || err == nil {
		t.Errorf("run-time failure = %v, %v; want false and an error", ok, err)
	}
}

func TestCompilePaymentPredicateErrors(t *testing.T) {
	tests := []struct {
		src, want string
	}{
		{``, "expression is required"},
		{`account.agedays < 7`, "unknown name `account.agedays`; did you mean `account.age_days` (1:9)"},
		{`features.card_attempts_1h > 1`, "unknown name `features` (1:1)"},
		{`limits.single_max > 1`, "unknown name `limits` (1:1)"},
		{`amount`, "expected bool, but got int (1:1)"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			_, err := rules.CompilePaymentPredicate(tt.src)
			var ce *rules.CompileError
			if !errors.As(err, &ce) || len(ce.Errors) != 1 || !errors.Is(err, engine.ErrUnprocessable) {
				t.Fatalf("err = %v, want one compile error", err)
			}
			if got := ce.Errors[0]; got.Error() != tt.want || got.Field != "when" {
				t.Errorf("error = %q on %q, want %q on when", got.Error(), got.Field, tt.want)
			}
		})
	}
}
