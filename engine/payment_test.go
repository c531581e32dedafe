package engine_test

import (
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
)

// TestPaymentField checks every path of Payment.Field and that Text, its
// unboxed fast path, agrees with it.
func TestPaymentField(t *testing.T) {
	created := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	occurred := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	p := engine.Payment{
		TransactionID: "tx_1", OccurredAt: occurred, Amount: 12999, Currency: "USD",
		Account:    engine.Account{ID: "acc_42", Email: "a@example.com", CreatedAt: created, Country: "US"},
		Card:       engine.Card{Fingerprint: "fp_9a", BIN: "411111", Country: "GB"},
		Device:     engine.Device{ID: "dev_7", IP: "203.0.113.7", IPCountry: "FR"},
		Merchant:   engine.Merchant{ID: "m_1", MCC: "5999", Country: "DE"},
		Attributes: map[string]any{"channel": "web", "items": 3.0, "gift": true, "empty": ""},
	}
	tests := []struct {
		path string
		want any // nil: absent
		text bool
	}{
		{"transaction_id", "tx_1", true},
		{"amount", 12999.0, false},
		{"currency", "USD", true},
		{"occurred_at", occurred, false},
		{"account.id", "acc_42", true},
		{"account.email", "a@example.com", true},
		{"account.country", "US", true},
		{"account.created_at", created, false},
		{"card.fingerprint", "fp_9a", true},
		{"card.bin", "411111", true},
		{"card.country", "GB", true},
		{"device.id", "dev_7", true},
		{"device.ip", "203.0.113.7", true},
		{"device.ip_country", "FR", true},
		{"merchant.id", "m_1", true},
		{"merchant.mcc", "5999", true},
		{"merchant.country", "DE", true},
		{"attributes.channel", "web", false},
		{"attributes.items", 3.0, false},
		{"attributes.gift", true, false},
		{"attributes.empty", nil, false},
		{"attributes.missing", nil, false},
		{"card.number", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			v, ok := p.Field(tt.path)
			if ok != (tt.want != nil) || (ok && v != tt.want) {
				t.Errorf("Field = %v, %v; want %v", v, ok, tt.want)
			}
			s, text := p.Text(tt.path)
			if text != tt.text || (text && s != tt.want) {
				t.Errorf("Text = %q, %v; want text %v", s, text, tt.text)
			}
		})
	}
	var empty engine.Payment // amount is always present: it is required
	for _, tt := range tests {
		if v, ok := empty.Field(tt.path); ok && tt.path != "amount" {
			t.Errorf("empty payment: Field(%s) = %v, want absent", tt.path, v)
		}
	}
}
