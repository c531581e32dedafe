package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// The payment's JSON form is the one wire format the engine knows, because
// two edges read it: the server (POST /v1/decisions) and the admin's
// offline replay (one payment per line of an events file). admin must not
// import server, so the one decoder lives here.

// paymentJSON is the wire form of a payment. Unknown fields are rejected
// at every level but attributes, so a misspelt field is an error and
// nothing unexpected is stored. Label is not part of it: "-" makes a
// "label" in the body an unknown field.
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
	Label         string          `json:"-"`
}

// labelledJSON is paymentJSON with its label decoded, as a replay event
// carries it. The fields must stay those of paymentJSON, tags aside: the
// conversion in DecodeLabelledPayment does not compile otherwise. (Embedding
// paymentJSON instead would cost a reflect lookup per field and put
// "paymentJSON." in the path of every type error.)
type labelledJSON struct {
	TransactionID string          `json:"transaction_id"`
	OccurredAt    string          `json:"occurred_at"`
	Amount        json.RawMessage `json:"amount"`
	Currency      string          `json:"currency"`
	Account       accountJSON     `json:"account"`
	Card          cardJSON        `json:"card"`
	Device        deviceJSON      `json:"device"`
	Merchant      merchantJSON    `json:"merchant"`
	Attributes    map[string]any  `json:"attributes"`
	Label         string          `json:"label"`
}

// The parts are aliases of unnamed struct types, not named types:
// encoding/json takes the address of every value of a named type, looking
// for an UnmarshalJSON method, which costs about 3% of a replay's decoding.

type accountJSON = struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	CreatedAt string `json:"created_at"`
	Country   string `json:"country"`
}

type cardJSON = struct {
	Fingerprint string `json:"fingerprint"`
	BIN         string `json:"bin"`
	Country     string `json:"country"`
}

type deviceJSON = struct {
	ID        string `json:"id"`
	IP        string `json:"ip"`
	IPCountry string `json:"ip_country"`
}

type merchantJSON = struct {
	ID      string `json:"id"`
	MCC     string `json:"mcc"`
	Country string `json:"country"`
}

// DecodePayment parses body, one JSON object in the shape of a
// POST /v1/decisions request, into a Payment. Every error is a *FieldError
// naming the field at fault, and a value anywhere in the body that looks
// like a card number is refused (card_number_refused). Times are returned
// in UTC; an absent time is zero. Attribute numbers become float64.
//
// DecodePayment does not Validate the payment: the caller knows its "now".
// It is safe for concurrent use.
func DecodePayment(body []byte) (Payment, error) {
	var w paymentJSON
	if !scanPayment(body, &w) {
		w = paymentJSON{}
		if err := decodeObject(body, &w); err != nil {
			return Payment{}, err
		}
	}
	p, err := w.payment()
	if err == nil {
		err = checkRawPAN(body)
	}
	if err != nil {
		return Payment{}, err
	}
	return p, nil
}

// DecodeLabelledPayment is DecodePayment for a body that may also hold a
// top-level "label" field, as the events of an offline replay do. label is
// the field as given, "" when absent; checking it is the caller's. Errors
// are those of DecodePayment.
func DecodeLabelledPayment(body []byte) (p Payment, label string, err error) {
	var w labelledJSON
	if err := decodeObject(body, &w); err != nil {
		return Payment{}, "", err
	}
	if p, err = (*paymentJSON)(&w).payment(); err != nil {
		return Payment{}, "", err
	}
	if err := checkRawPAN(body); err != nil {
		return Payment{}, "", err
	}
	return p, w.Label, nil
}

// checkRawPAN refuses a body whose text holds a card number that no decoded
// field shows: a duplicated key whose first value was a card number (JSON
// keeps the last), or a key matched case-insensitively and then overwritten.
// The request is stored as received, so the text itself must be clean.
func checkRawPAN(body []byte) error {
	if looksLikePAN(body) {
		return panError("")
	}
	return nil
}

// decodeObject decodes exactly one JSON object into v, numbers kept as
// json.Number and unknown fields refused.
func decodeObject(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		ferr := InvalidJSON(err)
		if fe, ok := ferr.(*FieldError); ok && fe.Code == "unknown_field" {
			fe.Field = unknownFieldPath(body, fe.Field)
			fe.Message = fmt.Sprintf("unknown field %q", fe.Field)
		}
		return ferr
	}
	if dec.More() {
		return Invalid("", "invalid_json", "the body must hold exactly one JSON object")
	}
	return nil
}

// unknownFieldPath finds where the unknown field name sits in body, which
// encoding/json does not say: the top level or one of its objects
// ("device.ip_contry"). It runs only on the error path.
func unknownFieldPath(body []byte, name string) string {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return name
	}
	if _, ok := top[name]; ok {
		return name
	}
	for _, parent := range []string{"account", "card", "device", "merchant"} {
		var obj map[string]json.RawMessage
		if json.Unmarshal(top[parent], &obj) == nil {
			if _, ok := obj[name]; ok {
				return parent + "." + name
			}
		}
	}
	return name
}

// payment converts the decoded wire form, card number check first.
func (w *paymentJSON) payment() (Payment, error) {
	if err := w.checkPAN(); err != nil {
		return Payment{}, err
	}
	p := Payment{
		TransactionID: w.TransactionID,
		Currency:      w.Currency,
		Account:       Account{ID: w.Account.ID, Email: w.Account.Email, Country: w.Account.Country},
		Card:          Card{Fingerprint: w.Card.Fingerprint, BIN: w.Card.BIN, Country: w.Card.Country},
		Device:        Device{ID: w.Device.ID, IP: w.Device.IP, IPCountry: w.Device.IPCountry},
		Merchant:      Merchant{ID: w.Merchant.ID, MCC: w.Merchant.MCC, Country: w.Merchant.Country},
	}
	if len(w.Amount) == 0 || string(w.Amount) == "null" {
		return Payment{}, Invalid("amount", "required", "amount is required")
	}
	if c := w.Amount[0]; c != '-' && (c < '0' || c > '9') {
		return Payment{}, Invalid("amount", "invalid_type", "amount must be an integer in minor units, not a JSON string or other value")
	}
	amount, err := strconv.ParseInt(string(w.Amount), 10, 64)
	if err != nil {
		return Payment{}, Invalid("amount", "invalid_amount", "amount must be a positive integer in minor units")
	}
	p.Amount = amount
	if p.OccurredAt, err = ParseTime("occurred_at", w.OccurredAt); err != nil {
		return Payment{}, err
	}
	if p.Account.CreatedAt, err = ParseTime("account.created_at", w.Account.CreatedAt); err != nil {
		return Payment{}, err
	}
	if len(w.Attributes) > 0 {
		p.Attributes = make(map[string]any, len(w.Attributes))
		for k, v := range w.Attributes {
			switch v := v.(type) {
			case json.Number:
				f, err := v.Float64()
				if err != nil {
					return Payment{}, Invalid("attributes."+k, "invalid_number", "number out of range")
				}
				p.Attributes[k] = f
			case string, bool:
				p.Attributes[k] = v
			case nil:
			default:
				return Payment{}, Invalid("attributes."+k, "invalid_type", "attributes hold strings, numbers and booleans only")
			}
		}
	}
	return p, nil
}

// ParseTime parses an RFC 3339 time given in field; "" is the zero time.
// A malformed time is a *FieldError naming field.
func ParseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, Invalid(field, "invalid_time", field+" must be an RFC 3339 time such as 2026-11-22T10:00:00Z")
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
		if LooksLikePAN(f.value) {
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
		if LooksLikePAN(k) {
			return panError("attributes") // naming the field would echo the number
		}
		if LooksLikePAN(s) {
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
		if LooksLikePAN(mantissa) {
			return true
		}
	}
	f, err := n.Float64()
	return err == nil && LooksLikePAN(strconv.FormatFloat(f, 'f', -1, 64))
}

func panError(field string) error {
	return Invalid(field, "card_number_refused",
		"this field looks like a card number; send the card's fingerprint or token, never its number")
}

// InvalidJSON turns an error of encoding/json decoding a request body into
// a *FieldError: invalid_json when the body is not valid JSON or not an
// object, invalid_type naming the field that holds a value of the wrong
// type, unknown_field naming a field the body may not hold. An unknown
// field whose name looks like a card number is refused unnamed, as
// card_number_refused.
func InvalidJSON(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Invalid("", "invalid_json", "the body is not valid JSON")
	case errors.As(err, &typ):
		field := typ.Field
		want := typ.Type.String()
		switch {
		case field == "amount":
			want = "an integer"
		case typ.Type.Kind() == reflect.Map, typ.Type.Kind() == reflect.Struct:
			want = "an object"
		case want == "json.Number":
			want = "a number"
		}
		if field == "" {
			return Invalid("", "invalid_json", "the body must be a JSON object")
		}
		return Invalid(field, "invalid_type", fmt.Sprintf("%s must be %s, not a JSON %s", field, want, typ.Value))
	}
	// encoding/json reports unknown fields only as text.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		if LooksLikePAN(name) {
			return panError("") // naming the field would echo the number
		}
		return Invalid(name, "unknown_field", fmt.Sprintf("unknown field %q", name))
	}
	return Invalid("", "invalid_json", "the body is not valid JSON")
}
