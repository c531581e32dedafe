package engine_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
)

func validPayment() engine.Payment {
	return engine.Payment{TransactionID: "tx_1", Amount: 100, Currency: "USD"}
}

func TestValidate(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		mutate    func(p *engine.Payment)
		wantField string
		wantCode  string
	}{
		{"valid", func(p *engine.Payment) {}, "", ""},
		{"missing transaction id", func(p *engine.Payment) { p.TransactionID = "" }, "transaction_id", "required"},
		{"long transaction id", func(p *engine.Payment) { p.TransactionID = strings.Repeat("x", 129) }, "transaction_id", "too_long"},
		{"128 chars ok", func(p *engine.Payment) { p.TransactionID = strings.Repeat("x", 128) }, "", ""},
		{"zero amount", func(p *engine.Payment) { p.Amount = 0 }, "amount", "invalid_amount"},
		{"negative amount", func(p *engine.Payment) { p.Amount = -5 }, "amount", "invalid_amount"},
		{"missing currency", func(p *engine.Payment) { p.Currency = "" }, "currency", "required"},
		{"unknown currency", func(p *engine.Payment) { p.Currency = "XXY" }, "currency", "invalid_currency"},
		{"lowercase currency", func(p *engine.Payment) { p.Currency = "usd" }, "currency", "invalid_currency"},
		{"far future", func(p *engine.Payment) { p.OccurredAt = now.Add(time.Hour) }, "occurred_at", "in_future"},
		{"slight skew ok", func(p *engine.Payment) { p.OccurredAt = now.Add(time.Minute) }, "", ""},
		{"late event ok", func(p *engine.Payment) { p.OccurredAt = now.Add(-48 * time.Hour) }, "", ""},
		{"long card country", func(p *engine.Payment) { p.Card.Country = strings.Repeat("U", 257) }, "card.country", "too_long"},
		{"attribute object", func(p *engine.Payment) { p.Attributes = map[string]any{"x": []any{1}} }, "attributes.x", "invalid_type"},
		{"too many attributes", func(p *engine.Payment) {
			p.Attributes = map[string]any{}
			for i := 0; i < 65; i++ {
				p.Attributes[strings.Repeat("k", i+1)] = true
			}
		}, "attributes", "too_many"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPayment()
			tt.mutate(&p)
			err := p.Validate(now)
			if tt.wantField == "" && tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			var fe *engine.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %v, want a *FieldError", err)
			}
			if fe.Field != tt.wantField || fe.Code != tt.wantCode {
				t.Errorf("got field %q code %q, want %q %q", fe.Field, fe.Code, tt.wantField, tt.wantCode)
			}
			if !errors.Is(err, engine.ErrInvalid) {
				t.Error("field error does not match ErrInvalid")
			}
		})
	}
}

func TestLooksLikePAN(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"4111111111111111", true},
		{"4111 1111 1111 1111", true},
		{"4111-1111-1111-1111", true},
		{"378282246310005", true},       // 15-digit Amex test number
		{"6011111111111117", true},      // Discover
		{"4111111111111112", false},     // fails Luhn
		{"411111111111", false},         // 12 digits
		{"41111111111111111111", false}, // 20 digits
		{"fp_4111111111111111", true},   // embedded in a longer value
		{"note: card 4111 1111 1111 1111 lost", true},
		{"order 20261122 item 5", false},
		{"tx_1001", false},
		{"2026-11-22T10:00:00Z", false},
		{" 4111111111111111", true},
		{"12345678901234567890123", false}, // too long to be a card number
		{"", false},
	}
	for _, tt := range tests {
		if got := engine.LooksLikePAN(tt.in); got != tt.want {
			t.Errorf("LooksLikePAN(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestContentHash(t *testing.T) {
	a := validPayment()
	a.Attributes = map[string]any{"channel": "web", "items": 3.0}
	b := validPayment()
	b.Attributes = map[string]any{"items": 3.0, "channel": "web"}
	if a.ContentHash() != b.ContentHash() {
		t.Error("attribute order changed the hash")
	}
	c := validPayment()
	c.Amount = 101
	if a.ContentHash() == c.ContentHash() {
		t.Error("different amounts hash equal")
	}
	d := validPayment()
	d.Attributes = map[string]any{"channel": "web", "items": "3"}
	if a.ContentHash() == d.ContentHash() {
		t.Error("number 3 and string \"3\" hash equal")
	}
}

// TestContentHashPinned pins the hash of one payment: stored records carry
// it, so a change would make every retry of an earlier transaction a
// conflict.
func TestContentHashPinned(t *testing.T) {
	p := engine.Payment{TransactionID: "tx_pin", OccurredAt: time.Date(2026, 11, 30, 12, 0, 0, 5, time.UTC), Amount: 12999, Currency: "EUR",
		Account:    engine.Account{ID: "acc_1", Email: "a@example.com", CreatedAt: time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC), Country: "DE"},
		Card:       engine.Card{Fingerprint: "fp_1", BIN: "411111", Country: "DE"},
		Device:     engine.Device{ID: "dev_1", IP: "203.0.113.7", IPCountry: "FR"},
		Merchant:   engine.Merchant{ID: "m_1", MCC: "5999", Country: "DE"},
		Attributes: map[string]any{"channel": "web", "items": 3.0, "gift": true, "note": nil}}
	const want = "479fc333b0efda987069c056c8b16dd6373e1cf9de70237c35cfb78349aa0a54"
	if got := p.ContentHash(); got != want {
		t.Errorf("ContentHash = %s, want %s", got, want)
	}
}
