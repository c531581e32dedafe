package engine

import (
	"encoding/json"
	"unicode/utf8"
)

// scanPayment is the fast path of DecodePayment: a scanner for the common
// shape of a payment body (the known fields, strings without escapes,
// attributes holding strings, numbers and booleans) that fills w the way
// encoding/json would. On anything else (an escape, an unknown or
// differently cased key, a null, a nested attribute, a syntax error) it
// returns false and the caller decodes the body with encoding/json, which
// then produces the exact error. FuzzScanPayment holds the two paths to the
// same result.
//
// It exists because encoding/json cost a tenth of a decision's CPU; this
// path allocates the strings of the payment and little else.
func scanPayment(body []byte, w *paymentJSON) bool {
	s := scanner{b: body}
	// One string for the whole body: every field is a substring of it.
	s.text = string(body)
	ok := s.object(func(key string) bool {
		switch key {
		case "transaction_id":
			return s.str(&w.TransactionID)
		case "occurred_at":
			return s.str(&w.OccurredAt)
		case "amount":
			raw, ok := s.number()
			w.Amount = json.RawMessage(raw)
			return ok
		case "currency":
			return s.str(&w.Currency)
		case "account":
			return s.object(func(key string) bool {
				switch key {
				case "id":
					return s.str(&w.Account.ID)
				case "email":
					return s.str(&w.Account.Email)
				case "created_at":
					return s.str(&w.Account.CreatedAt)
				case "country":
					return s.str(&w.Account.Country)
				}
				return false
			})
		case "card":
			return s.object(func(key string) bool {
				switch key {
				case "fingerprint":
					return s.str(&w.Card.Fingerprint)
				case "bin":
					return s.str(&w.Card.BIN)
				case "country":
					return s.str(&w.Card.Country)
				}
				return false
			})
		case "device":
			return s.object(func(key string) bool {
				switch key {
				case "id":
					return s.str(&w.Device.ID)
				case "ip":
					return s.str(&w.Device.IP)
				case "ip_country":
					return s.str(&w.Device.IPCountry)
				}
				return false
			})
		case "merchant":
			return s.object(func(key string) bool {
				switch key {
				case "id":
					return s.str(&w.Merchant.ID)
				case "mcc":
					return s.str(&w.Merchant.MCC)
				case "country":
					return s.str(&w.Merchant.Country)
				}
				return false
			})
		case "attributes":
			if w.Attributes == nil {
				w.Attributes = make(map[string]any, 8)
			}
			return s.object(func(key string) bool {
				v, ok := s.scalar()
				w.Attributes[key] = v
				return ok
			})
		}
		return false
	})
	if !ok {
		return false
	}
	s.space()
	return s.i == len(s.b) // exactly one value
}

// scanner reads JSON from b; text is b as a string, for substrings.
type scanner struct {
	b    []byte
	text string
	i    int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips space and consumes c, reporting whether it was there.
func (s *scanner) next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object reads an object, calling member for each key with the scanner
// before the value; member reads the value and reports success.
func (s *scanner) object(member func(key string) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		var key string
		if !s.str(&key) || !s.next(':') || !member(key) {
			return false
		}
		if s.next(',') {
			continue
		}
		return s.next('}')
	}
}

// str reads a string without escapes into dst.
func (s *scanner) str(dst *string) bool {
	if !s.next('"') {
		return false
	}
	start := s.i
	ascii := true
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			if !ascii && !utf8.Valid(s.b[start:s.i]) {
				return false // encoding/json would replace the invalid bytes
			}
			*dst = s.text[start:s.i]
			s.i++
			return true
		case c == '\\' || c < 0x20:
			return false
		case c >= 0x80:
			ascii = false
		}
	}
	return false
}

// number reads a number token, checking the JSON grammar.
func (s *scanner) number() ([]byte, bool) {
	s.space()
	start := s.i
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case digits() == 0:
		return nil, false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return s.b[start:s.i], true
}

// scalar reads an attribute value: a string, a number (as json.Number) or
// a boolean.
func (s *scanner) scalar() (any, bool) {
	s.space()
	if s.i >= len(s.b) {
		return nil, false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		var v string
		ok := s.str(&v)
		return v, ok
	case c == 't':
		return true, s.literal("true")
	case c == 'f':
		return false, s.literal("false")
	case c == '-' || c >= '0' && c <= '9':
		start := s.i
		_, ok := s.number()
		return json.Number(s.text[start:s.i]), ok
	}
	return nil, false
}

func (s *scanner) literal(word string) bool {
	if len(s.b)-s.i >= len(word) && s.text[s.i:s.i+len(word)] == word {
		s.i += len(word)
		return true
	}
	return false
}
