package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/riskengine/risk/engine"
)

// paymentJSON is the wire form of POST /v1/decisions. Unknown fields are
// rejected at every level but attributes, so a misspelt field is an error
// and nothing unexpected is stored.
type paymentJSON struct {
	TransactionID string          `json:"transaction_id"`
	OccurredAt    string          `json:"occurred_at"`
	Amount        json.RawMessage `json:"amount"`
	Currency      string          `json:"currency"`
	Account       accountJSON     `json:"account"`
	Card          cardJSON        `json:"card"`
	Device        deviceJSON      `json:"device"`
	Merchant      merchantJSON    `json:"merchant"`
	Attributes    map[string]any  `json:"attributes"`
}

type accountJSON struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	CreatedAt string `json:"created_at"`
	Country   string `json:"country"`
}

type cardJSON struct {
	Fingerprint string `json:"fingerprint"`
	BIN         string `json:"bin"`
	Country     string `json:"country"`
}

type deviceJSON struct {
	ID        string `json:"id"`
	IP        string `json:"ip"`
	IPCountry string `json:"ip_country"`
}

type merchantJSON struct {
	ID      string `json:"id"`
	MCC     string `json:"mcc"`
	Country string `json:"country"`
}

// decodePayment parses a decision request body into an engine.Payment.
// Every error is a *engine.FieldError naming the field at fault. A value
// that looks like a card number anywhere in the body is refused.
func decodePayment(body []byte) (engine.Payment, error) {
	var w paymentJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return engine.Payment{}, jsonError(err)
	}
	if dec.More() {
		return engine.Payment{}, engine.Invalid("", "invalid_json", "the body must hold exactly one JSON object")
	}
	if err := w.checkPAN(); err != nil {
		return engine.Payment{}, err
	}
	p := engine.Payment{
		TransactionID: w.TransactionID,
		Currency:      w.Currency,
		Account:       engine.Account{ID: w.Account.ID, Email: w.Account.Email, Country: w.Account.Country},
		Card:          engine.Card{Fingerprint: w.Card.Fingerprint, BIN: w.Card.BIN, Country: w.Card.Country},
		Device:        engine.Device{ID: w.Device.ID, IP: w.Device.IP, IPCountry: w.Device.IPCountry},
		Merchant:      engine.Merchant{ID: w.Merchant.ID, MCC: w.Merchant.MCC, Country: w.Merchant.Country},
	}
	if len(w.Amount) == 0 || string(w.Amount) == "null" {
		return engine.Payment{}, engine.Invalid("amount", "required", "amount is required")
	}
	if c := w.Amount[0]; c != '-' && (c < '0' || c > '9') {
		return engine.Payment{}, engine.Invalid("amount", "invalid_type", "amount must be an integer in minor units, not a JSON string or other value")
	}
	amount, err := strconv.ParseInt(string(w.Amount), 10, 64)
	if err != nil {
		return engine.Payment{}, engine.Invalid("amount", "invalid_amount", "amount must be a positive integer in minor units")
	}
	p.Amount = amount
	if p.OccurredAt, err = parseTime("occurred_at", w.OccurredAt); err != nil {
		return engine.Payment{}, err
	}
	if p.Account.CreatedAt, err = parseTime("account.created_at", w.Account.CreatedAt); err != nil {
		return engine.Payment{}, err
	}
	if len(w.Attributes) > 0 {
		p.Attributes = make(map[string]any, len(w.Attributes))
		for k, v := range w.Attributes {
			switch v := v.(type) {
			case json.Number:
				f, err := v.Float64()
				if err != nil {
					return engine.Payment{}, engine.Invalid("attributes."+k, "invalid_number", "number out of range")
				}
				p.Attributes[k] = f
			case string, bool:
				p.Attributes[k] = v
			case nil:
			default:
				return engine.Payment{}, engine.Invalid("attributes."+k, "invalid_type", "attributes hold strings, numbers and booleans only")
			}
		}
	}
	return p, nil
}

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, engine.Invalid(field, "invalid_time", field+" must be an RFC 3339 time such as 2026-11-22T10:00:00Z")
	}
	return t.UTC(), nil
}

// checkPAN refuses any string or number in the body that could be a card
// number: the engine never stores one.
func (w *paymentJSON) checkPAN() error {
	fields := []struct{ name, value string }{
		{"transaction_id", w.TransactionID}, {"amount", string(w.Amount)}, {"currency", w.Currency},
		{"occurred_at", w.OccurredAt},
		{"account.id", w.Account.ID}, {"account.email", w.Account.Email}, {"account.country", w.Account.Country},
		{"account.created_at", w.Account.CreatedAt},
		{"card.fingerprint", w.Card.Fingerprint}, {"card.bin", w.Card.BIN}, {"card.country", w.Card.Country},
		{"device.id", w.Device.ID}, {"device.ip", w.Device.IP}, {"device.ip_country", w.Device.IPCountry},
		{"merchant.id", w.Merchant.ID}, {"merchant.mcc", w.Merchant.MCC}, {"merchant.country", w.Merchant.Country},
	}
	for _, f := range fields {
		if engine.LooksLikePAN(f.value) {
			return panError(f.name)
		}
	}
	for k, v := range w.Attributes {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case json.Number:
			s = string(v)
			if numberHidesPAN(v) {
				return panError("attributes." + k)
			}
		}
		if engine.LooksLikePAN(k) {
			return panError("attributes") // naming the field would echo the number
		}
		if engine.LooksLikePAN(s) {
			return panError("attributes." + k)
		}
	}
	return nil
}

// numberHidesPAN reports whether a JSON number carries a card number that
// its text does not show as one run of digits: 4.111111111111111e15 is
// stored and shown as 4111111111111111, and the request as received keeps
// its mantissa digits.
func numberHidesPAN(n json.Number) bool {
	text := string(n)
	if i := strings.IndexAny(text, "eE"); i >= 0 {
		mantissa := strings.NewReplacer(".", "", "-", "", "+", "").Replace(text[:i])
		if engine.LooksLikePAN(mantissa) {
			return true
		}
	}
	f, err := n.Float64()
	return err == nil && engine.LooksLikePAN(strconv.FormatFloat(f, 'f', -1, 64))
}

func panError(field string) error {
	return engine.Invalid(field, "card_number_refused",
		"this field looks like a card number; send the card's fingerprint or token, never its number")
}

// jsonError turns a decoding error into a field error.
func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return engine.Invalid("", "invalid_json", "the body is not valid JSON")
	case errors.As(err, &typ):
		field := typ.Field
		want := typ.Type.String()
		switch {
		case field == "amount":
			want = "an integer"
		case strings.HasPrefix(want, "map"), strings.HasPrefix(want, "server."):
			want = "an object"
		case want == "json.Number":
			want = "a number"
		}
		if field == "" {
			return engine.Invalid("", "invalid_json", "the body must be a JSON object")
		}
		return engine.Invalid(field, "invalid_type", fmt.Sprintf("%s must be %s, not a JSON %s", field, want, typ.Value))
	}
	// encoding/json reports unknown fields only as text.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		if engine.LooksLikePAN(name) {
			return panError("") // naming the field would echo the number
		}
		return engine.Invalid(name, "unknown_field", fmt.Sprintf("unknown field %q", name))
	}
	return engine.Invalid("", "invalid_json", "the body is not valid JSON")
}
