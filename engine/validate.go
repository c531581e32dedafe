package engine

import (
	"fmt"
	"time"
)

// Input bounds. They keep one request from costing more than its share of
// memory and CPU; the server enforces the body size before decoding.
const (
	MaxTransactionIDLen = 128
	MaxStringLen        = 256
	MaxAttributes       = 64
	MaxAttributeKeyLen  = 64
	// MaxClockSkew is how far in the future occurred_at may lie before the
	// payment is refused: more than this is a broken clock, not a late event.
	MaxClockSkew = 5 * time.Minute
)

// Validate checks p against the request contract and returns a *FieldError
// naming the first field at fault. now is the server's clock; a zero
// OccurredAt is not an error (the caller defaults it to now).
func (p *Payment) Validate(now time.Time) error {
	switch {
	case p.TransactionID == "":
		return Invalid("transaction_id", "required", "transaction_id is required")
	case len(p.TransactionID) > MaxTransactionIDLen:
		return Invalid("transaction_id", "too_long", fmt.Sprintf("transaction_id is longer than %d characters", MaxTransactionIDLen))
	case p.Amount <= 0:
		return Invalid("amount", "invalid_amount", "amount must be a positive integer in minor units")
	case p.Currency == "":
		return Invalid("currency", "required", "currency is required")
	case !IsCurrency(p.Currency):
		return Invalid("currency", "invalid_currency", fmt.Sprintf("currency %q is not an ISO 4217 alpha-3 code", p.Currency))
	case !p.OccurredAt.IsZero() && p.OccurredAt.After(now.Add(MaxClockSkew)):
		return Invalid("occurred_at", "in_future", "occurred_at is too far in the future")
	}
	for _, f := range []struct{ name, value string }{
		{"account.id", p.Account.ID}, {"account.email", p.Account.Email}, {"account.country", p.Account.Country},
		{"card.fingerprint", p.Card.Fingerprint}, {"card.bin", p.Card.BIN}, {"card.country", p.Card.Country},
		{"device.id", p.Device.ID}, {"device.ip", p.Device.IP}, {"device.ip_country", p.Device.IPCountry},
		{"merchant.id", p.Merchant.ID}, {"merchant.mcc", p.Merchant.MCC}, {"merchant.country", p.Merchant.Country},
	} {
		if len(f.value) > MaxStringLen {
			return Invalid(f.name, "too_long", fmt.Sprintf("%s is longer than %d characters", f.name, MaxStringLen))
		}
	}
	if len(p.Attributes) > MaxAttributes {
		return Invalid("attributes", "too_many", fmt.Sprintf("attributes holds more than %d entries", MaxAttributes))
	}
	for k, v := range p.Attributes {
		field := "attributes." + k
		if k == "" || len(k) > MaxAttributeKeyLen {
			return Invalid(field, "invalid_key", fmt.Sprintf("attribute names must be 1 to %d characters", MaxAttributeKeyLen))
		}
		switch v := v.(type) {
		case string:
			if len(v) > MaxStringLen {
				return Invalid(field, "too_long", fmt.Sprintf("%s is longer than %d characters", field, MaxStringLen))
			}
		case float64, bool:
		default:
			return Invalid(field, "invalid_type", "attributes hold strings, numbers and booleans only")
		}
	}
	return nil
}

// LooksLikePAN reports whether s carries a plausible primary account
// number anywhere in it: a run of 13 to 19 digits, optionally grouped by
// single spaces or dashes, that passes the Luhn check. The engine never
// stores such a value.
func LooksLikePAN(s string) bool { return looksLikePAN(s) }

// looksLikePAN is LooksLikePAN over text or bytes, so a request body is
// scanned without a copy.
func looksLikePAN[T string | []byte](s T) bool {
	var digits [19]byte
	n := 0 // digits in the current run
	tooLong := false
	flush := func() bool {
		ok := !tooLong && n >= 13 && luhn(digits[:n])
		n, tooLong = 0, false
		return ok
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if n == len(digits) {
				tooLong = true
			} else {
				digits[n] = c - '0'
				n++
			}
		case (c == ' ' || c == '-') && n > 0 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			// a separator inside a digit group keeps the run going
		default:
			if flush() {
				return true
			}
		}
	}
	return flush()
}

func luhn(d []byte) bool {
	sum := 0
	for i := range d {
		v := int(d[len(d)-1-i])
		if i%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}
