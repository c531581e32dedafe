package backtest

import (
	"bufio"
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

// MaxEventBytes bounds one line of an events file.
const MaxEventBytes = 1 << 20

// Event is one line of an events file: a payment in the JSON shape of
// POST /v1/decisions, plus an optional feedback label ("fraud", "legit",
// ...). Line is its 1-based line number in the file.
type Event struct {
	Payment engine.Payment
	Label   string
	Line    int
}

// eventJSON mirrors the server's request shape (server/payment.go), plus
// label. It is a copy rather than an import: admin must not depend on
// server. Unknown fields are refused at every level but attributes.
type eventJSON struct {
	TransactionID string          `json:"transaction_id"`
	OccurredAt    string          `json:"occurred_at"`
	Amount        json.RawMessage `json:"amount"`
	Currency      string          `json:"currency"`
	Account       struct {
		ID        string `json:"id"`
		Email     string `json:"email"`
		CreatedAt string `json:"created_at"`
		Country   string `json:"country"`
	} `json:"account"`
	Card struct {
		Fingerprint string `json:"fingerprint"`
		BIN         string `json:"bin"`
		Country     string `json:"country"`
	} `json:"card"`
	Device struct {
		ID        string `json:"id"`
		IP        string `json:"ip"`
		IPCountry string `json:"ip_country"`
	} `json:"device"`
	Merchant struct {
		ID      string `json:"id"`
		MCC     string `json:"mcc"`
		Country string `json:"country"`
	} `json:"merchant"`
	Attributes map[string]any `json:"attributes"`
	Label      string         `json:"label"`
}

// DecodeEvent parses one event. Errors are *engine.FieldError naming the
// field at fault. Offline, occurred_at is required (it orders the replay),
// and the payment must pass the same validation as a live request, card
// number check included.
func DecodeEvent(data []byte) (Event, error) {
	var w eventJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Event{}, decodeError(err)
	}
	if dec.More() {
		return Event{}, engine.Invalid("", "invalid_json", "a line must hold exactly one JSON object")
	}
	p := engine.Payment{
		TransactionID: w.TransactionID,
		Currency:      w.Currency,
		Account:       engine.Account{ID: w.Account.ID, Email: w.Account.Email, Country: w.Account.Country},
		Card:          engine.Card{Fingerprint: w.Card.Fingerprint, BIN: w.Card.BIN, Country: w.Card.Country},
		Device:        engine.Device{ID: w.Device.ID, IP: w.Device.IP, IPCountry: w.Device.IPCountry},
		Merchant:      engine.Merchant{ID: w.Merchant.ID, MCC: w.Merchant.MCC, Country: w.Merchant.Country},
	}
	if err := checkPAN(&p, w.OccurredAt, w.Account.CreatedAt, string(w.Amount)); err != nil {
		return Event{}, err
	}
	amount, err := strconv.ParseInt(string(w.Amount), 10, 64)
	if err != nil {
		if len(w.Amount) == 0 || string(w.Amount) == "null" {
			return Event{}, engine.Invalid("amount", "required", "amount is required")
		}
		return Event{}, engine.Invalid("amount", "invalid_amount", "amount must be a positive integer in minor units")
	}
	p.Amount = amount
	if w.OccurredAt == "" {
		return Event{}, engine.Invalid("occurred_at", "required", "occurred_at is required offline: it orders the replay")
	}
	if p.OccurredAt, err = parseTime("occurred_at", w.OccurredAt); err != nil {
		return Event{}, err
	}
	if p.Account.CreatedAt, err = parseTime("account.created_at", w.Account.CreatedAt); err != nil {
		return Event{}, err
	}
	if len(w.Attributes) > 0 {
		p.Attributes = make(map[string]any, len(w.Attributes))
		for k, v := range w.Attributes {
			switch v := v.(type) {
			case json.Number:
				f, err := v.Float64()
				if err != nil {
					return Event{}, engine.Invalid("attributes."+k, "invalid_number", "number out of range")
				}
				p.Attributes[k] = f
			case string:
				if engine.LooksLikePAN(v) {
					return Event{}, panError("attributes." + k)
				}
				p.Attributes[k] = v
			case bool:
				p.Attributes[k] = v
			case nil:
			default:
				return Event{}, engine.Invalid("attributes."+k, "invalid_type", "attributes hold strings, numbers and booleans only")
			}
		}
	}
	// The payment is validated at its own time: offline, "now" is when it
	// happened.
	if err := p.Validate(p.OccurredAt); err != nil {
		return Event{}, err
	}
	if w.Label != "" && !engine.ValidLabel(w.Label) {
		return Event{}, engine.Invalid("label", "invalid_label", "label must be fraud, chargeback, legit, challenge_passed or challenge_failed")
	}
	return Event{Payment: p, Label: w.Label}, nil
}

// ReadEvents reads one event per line (blank lines are skipped). An error
// names the line: "line 12: amount: ...".
func ReadEvents(r io.Reader) ([]Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxEventBytes)
	var out []Event
	seen := make(map[string]int)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		ev, err := DecodeEvent(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if first, dup := seen[ev.Payment.TransactionID]; dup {
			return nil, fmt.Errorf("line %d: %w", n, engine.Invalid("transaction_id", "duplicate",
				fmt.Sprintf("transaction_id %q was already used on line %d", ev.Payment.TransactionID, first)))
		}
		seen[ev.Payment.TransactionID] = n
		ev.Line = n
		out = append(out, ev)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d: longer than %d bytes", len(out)+1, MaxEventBytes)
		}
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
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

// checkPAN refuses any field that could be a card number, as the server
// does: an events file must not carry one either.
func checkPAN(p *engine.Payment, occurredAt, createdAt, amount string) error {
	for _, f := range []struct{ name, value string }{
		{"transaction_id", p.TransactionID}, {"amount", amount}, {"currency", p.Currency}, {"occurred_at", occurredAt},
		{"account.id", p.Account.ID}, {"account.email", p.Account.Email}, {"account.country", p.Account.Country},
		{"account.created_at", createdAt},
		{"card.fingerprint", p.Card.Fingerprint}, {"card.bin", p.Card.BIN}, {"card.country", p.Card.Country},
		{"device.id", p.Device.ID}, {"device.ip", p.Device.IP}, {"device.ip_country", p.Device.IPCountry},
		{"merchant.id", p.Merchant.ID}, {"merchant.mcc", p.Merchant.MCC}, {"merchant.country", p.Merchant.Country},
	} {
		if engine.LooksLikePAN(f.value) {
			return panError(f.name)
		}
	}
	return nil
}

func panError(field string) error {
	return engine.Invalid(field, "card_number_refused",
		"this field looks like a card number; use the card's fingerprint or token, never its number")
}

// decodeError turns a JSON decoding error into a field error. The JSON
// field path of a type error is in the error's Field.
func decodeError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return engine.Invalid("", "invalid_json", "not valid JSON")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return engine.Invalid("", "invalid_json", "want a JSON object")
		}
		return engine.Invalid(typ.Field, "invalid_type", fmt.Sprintf("%s must not be a JSON %s", typ.Field, typ.Value))
	}
	// encoding/json reports unknown fields only as text; there is no type
	// to match.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return engine.Invalid(name, "unknown_field", fmt.Sprintf("unknown field %q", name))
	}
	return engine.Invalid("", "invalid_json", "not valid JSON")
}
