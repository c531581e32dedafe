package engine

import (
	"strings"
	"time"
)

// Payment is one payment attempt as the gateway describes it, before it is
// authorised. Amount is in minor units of Currency (cents for USD).
//
// Only TransactionID, Amount and Currency are required; every other field may
// be zero, and a zero field contributes nothing to features keyed on it.
type Payment struct {
	TransactionID string
	OccurredAt    time.Time
	Amount        int64
	Currency      string
	Account       Account
	Card          Card
	Device        Device
	Merchant      Merchant
	// Attributes holds free-form gateway data. Values are string, float64 or
	// bool; the server converts JSON numbers to float64 at the edge.
	Attributes map[string]any
}

// Account is the customer account that pays.
type Account struct {
	ID        string
	Email     string
	CreatedAt time.Time
	Country   string
}

// Card identifies a card by its gateway fingerprint or token, never by its
// number: the engine refuses raw card numbers.
type Card struct {
	Fingerprint string
	BIN         string
	Country     string
}

// Device is what the gateway knows of the customer's device and network.
type Device struct {
	ID        string
	IP        string
	IPCountry string
}

// Merchant is the merchant receiving the payment.
type Merchant struct {
	ID      string
	MCC     string
	Country string
}

// Field returns the value at a dotted payment path as the rules and features
// name it ("card.fingerprint", "amount", "attributes.channel"). ok is false
// when the path is unknown or the value is absent (an empty string, a zero
// time, a missing attribute).
//
// Strings are returned as string, Amount as float64, times as time.Time,
// attributes as stored.
func (p *Payment) Field(path string) (v any, ok bool) {
	if s, text := p.Text(path); text {
		return nonEmpty(s)
	}
	switch path {
	case "amount":
		return float64(p.Amount), true
	case "occurred_at":
		return p.OccurredAt, !p.OccurredAt.IsZero()
	case "account.created_at":
		return p.Account.CreatedAt, !p.Account.CreatedAt.IsZero()
	}
	if name, found := strings.CutPrefix(path, "attributes."); found {
		v, ok := p.Attributes[name]
		if !ok || v == nil {
			return nil, false
		}
		if s, isStr := v.(string); isStr && s == "" {
			return nil, false
		}
		return v, true
	}
	return nil, false
}

// PaymentPaths lists the fixed payment paths Field understands, in a stable
// order. Any "attributes.<name>" path is valid as well.
var PaymentPaths = []string{
	"transaction_id", "amount", "currency", "occurred_at",
	"account.id", "account.email", "account.country", "account.created_at",
	"card.fingerprint", "card.bin", "card.country",
	"device.id", "device.ip", "device.ip_country",
	"merchant.id", "merchant.mcc", "merchant.country",
}

// ValidPath reports whether path names a payment field (see Field).
func ValidPath(path string) bool {
	if name, ok := strings.CutPrefix(path, "attributes."); ok {
		return name != ""
	}
	for _, p := range PaymentPaths {
		if p == path {
			return true
		}
	}
	return false
}

// Text returns a text field of the payment by JSON path without boxing it
// in an interface. text is false for paths that are not fixed text fields
// (amount, times, attributes): read those with Field.
func (p *Payment) Text(path string) (s string, text bool) {
	switch path {
	case "transaction_id":
		return p.TransactionID, true
	case "currency":
		return p.Currency, true
	case "account.id":
		return p.Account.ID, true
	case "account.email":
		return p.Account.Email, true
	case "account.country":
		return p.Account.Country, true
	case "card.fingerprint":
		return p.Card.Fingerprint, true
	case "card.bin":
		return p.Card.BIN, true
	case "card.country":
		return p.Card.Country, true
	case "device.id":
		return p.Device.ID, true
	case "device.ip":
		return p.Device.IP, true
	case "device.ip_country":
		return p.Device.IPCountry, true
	case "merchant.id":
		return p.Merchant.ID, true
	case "merchant.mcc":
		return p.Merchant.MCC, true
	case "merchant.country":
		return p.Merchant.Country, true
	}
	return "", false
}

func nonEmpty(s string) (any, bool) {
	if s == "" {
		return nil, false
	}
	return s, true
}
