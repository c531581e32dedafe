package limits_test

import (
	"testing"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/limits"
)

func TestEntityOf(t *testing.T) {
	p := engine.Payment{Account: engine.Account{ID: "acc_42"}, Card: engine.Card{Fingerprint: "fp_1"}, Merchant: engine.Merchant{ID: "m_1"}}
	tests := []struct {
		name   string
		kind   string
		change func(p *engine.Payment)
		want   string
		wantOK bool
	}{
		{name: "account", kind: limits.EntityAccount, want: "account:acc_42", wantOK: true},
		{name: "card", kind: limits.EntityCard, want: "card:fp_1", wantOK: true},
		{name: "account and merchant", kind: limits.EntityAccountMerchant, want: "account_merchant:acc_42:m_1", wantOK: true},
		{name: "no account id", kind: limits.EntityAccount, change: func(p *engine.Payment) { p.Account.ID = "" }},
		{name: "no fingerprint", kind: limits.EntityCard, change: func(p *engine.Payment) { p.Card.Fingerprint = "" }},
		{name: "no merchant", kind: limits.EntityAccountMerchant, change: func(p *engine.Payment) { p.Merchant.ID = "" }},
		{name: "no account for account_merchant", kind: limits.EntityAccountMerchant, change: func(p *engine.Payment) { p.Account.ID = "" }},
		{name: "unknown kind", kind: "device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := p
			if tt.change != nil {
				tt.change(&q)
			}
			got, ok := limits.EntityOf(tt.kind, &q)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("EntityOf(%q) = %q, %v; want %q, %v", tt.kind, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
