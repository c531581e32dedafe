package engine_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
)

const fullBody = `{"transaction_id":"t_full","occurred_at":"2026-11-22T11:00:00+01:00","amount":12999,"currency":"USD",` +
	`"account":{"id":"acc_42","email":"a@example.com","created_at":"2026-01-02T00:00:00Z","country":"US"},` +
	`"card":{"fingerprint":"fp_9a","bin":"411111","country":"US"},` +
	`"device":{"id":"dev_7","ip":"203.0.113.7","ip_country":"US"},` +
	`"merchant":{"id":"m_1","mcc":"5999","country":"US"},` +
	`"attributes":{"channel":"web","items":3,"first":true,"none":null}}`

func TestDecodePayment(t *testing.T) {
	got, err := engine.DecodePayment([]byte(fullBody))
	if err != nil {
		t.Fatalf("DecodePayment: %v", err)
	}
	want := engine.Payment{
		TransactionID: "t_full",
		OccurredAt:    time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		Amount:        12999,
		Currency:      "USD",
		Account:       engine.Account{ID: "acc_42", Email: "a@example.com", CreatedAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Country: "US"},
		Card:          engine.Card{Fingerprint: "fp_9a", BIN: "411111", Country: "US"},
		Device:        engine.Device{ID: "dev_7", IP: "203.0.113.7", IPCountry: "US"},
		Merchant:      engine.Merchant{ID: "m_1", MCC: "5999", Country: "US"},
		Attributes:    map[string]any{"channel": "web", "items": 3.0, "first": true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DecodePayment =\n%+v\nwant\n%+v", got, want)
	}
	if loc := got.OccurredAt.Location(); loc != time.UTC {
		t.Errorf("occurred_at in %v, want UTC", loc)
	}
}

// TestDecodePaymentErrors pins the field, code and message of every class
// of bad input: they are the API's answer to POST /v1/decisions.
func TestDecodePaymentErrors(t *testing.T) {
	const pan = "this field looks like a card number; send the card's fingerprint or token, never its number"
	tests := []struct {
		name, body           string
		field, code, message string
	}{
		{"empty", ``, "", "invalid_json", "the body is not valid JSON"},
		{"syntax", `{"amount":`, "", "invalid_json", "the body is not valid JSON"},
		{"not an object", `[1,2]`, "", "invalid_json", "the body must be a JSON object"},
		{"null", `null`, "amount", "required", "amount is required"},
		{"two objects", `{"amount":1} {}`, "", "invalid_json", "the body must hold exactly one JSON object"},
		{"trailing text", `{"amount":1} x`, "", "invalid_json", "the body must hold exactly one JSON object"},
		{"unknown field", `{"amount":1,"ammount":5}`, "ammount", "unknown_field", `unknown field "ammount"`},
		{"unknown nested field", `{"amount":1,"card":{"number":"x"}}`, "card.number", "unknown_field", `unknown field "card.number"`},
		{"unknown field in device", `{"amount":1,"device":{"ip_contry":"US"}}`, "device.ip_contry", "unknown_field", `unknown field "device.ip_contry"`},
		{"label is not a payment field", `{"amount":1,"label":"fraud"}`, "label", "unknown_field", `unknown field "label"`},
		{"unknown field named by a card number", `{"amount":1,"4111111111111111":1}`, "", "card_number_refused", pan},
		{"string where an object goes", `{"device":"phone"}`, "device", "invalid_type", "device must be an object, not a JSON string"},
		{"number where a string goes", `{"card":{"country":42}}`, "card.country", "invalid_type", "card.country must be string, not a JSON number"},
		{"array as attributes", `{"attributes":[]}`, "attributes", "invalid_type", "attributes must be an object, not a JSON array"},
		{"no amount", `{"transaction_id":"t"}`, "amount", "required", "amount is required"},
		{"null amount", `{"amount":null}`, "amount", "required", "amount is required"},
		{"string amount", `{"amount":"100"}`, "amount", "invalid_type", "amount must be an integer in minor units, not a JSON string or other value"},
		{"fractional amount", `{"amount":12.5}`, "amount", "invalid_amount", "amount must be a positive integer in minor units"},
		{"amount out of range", `{"amount":99999999999999999999}`, "amount", "invalid_amount", "amount must be a positive integer in minor units"},
		{"malformed time", `{"amount":1,"occurred_at":"yesterday"}`, "occurred_at", "invalid_time", "occurred_at must be an RFC 3339 time such as 2026-11-22T10:00:00Z"},
		{"malformed created_at", `{"amount":1,"account":{"created_at":"2026-13-01"}}`, "account.created_at", "invalid_time", "account.created_at must be an RFC 3339 time such as 2026-11-22T10:00:00Z"},
		{"attribute out of range", `{"amount":1,"attributes":{"x":1e400}}`, "attributes.x", "invalid_number", "number out of range"},
		{"nested attribute", `{"amount":1,"attributes":{"deep":{"x":1}}}`, "attributes.deep", "invalid_type", "attributes hold strings, numbers and booleans only"},
		{"card number in a field", `{"amount":1,"account":{"id":"4111 1111 1111 1111"}}`, "account.id", "card_number_refused", pan},
		{"escaped card number", `{"amount":1,"account":{"id":"\u0034111111111111111"}}`, "account.id", "card_number_refused", pan},
		{"card number as amount", `{"amount":4111111111111111}`, "amount", "card_number_refused", pan},
		{"card number in an attribute", `{"amount":1,"attributes":{"note":"4111-1111-1111-1111"}}`, "attributes.note", "card_number_refused", pan},
		{"card number behind an exponent", `{"amount":1,"attributes":{"ref":4.111111111111111e15}}`, "attributes.ref", "card_number_refused", pan},
		{"card number as an attribute name", `{"amount":1,"attributes":{"4111111111111111":"x"}}`, "attributes", "card_number_refused", pan},
		{"card number in a duplicated key", `{"amount":1,"account":{"id":"4111111111111111","id":"a1"}}`, "", "card_number_refused", pan},
		{"card number in a key matched by case", `{"amount":1,"Transaction_ID":"4111111111111111","transaction_id":"t1"}`, "", "card_number_refused", pan},
		{"card number before a bad amount", `{"amount":"x","attributes":{"n":"4111111111111111"}}`, "attributes.n", "card_number_refused", pan},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := engine.DecodePayment([]byte(tt.body))
			checkFieldError(t, err, tt.field, tt.code, tt.message)
		})
	}
}

func TestDecodeLabelledPayment(t *testing.T) {
	body := `{"label":"fraud",` + fullBody[1:]
	p, label, err := engine.DecodeLabelledPayment([]byte(body))
	if err != nil {
		t.Fatalf("DecodeLabelledPayment: %v", err)
	}
	if label != "fraud" {
		t.Errorf("label = %q, want fraud", label)
	}
	want, err := engine.DecodePayment([]byte(fullBody))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("payment =\n%+v\nwant as DecodePayment\n%+v", p, want)
	}
	if _, label, err := engine.DecodeLabelledPayment([]byte(fullBody)); err != nil || label != "" {
		t.Errorf("no label: label %q, err %v; want \"\", nil", label, err)
	}
}

// TestDecodeLabelledPaymentErrors: a labelled payment fails as
// DecodePayment does and names fields alike (had labelledJSON embedded
// paymentJSON, encoding/json would name "paymentJSON.account").
func TestDecodeLabelledPaymentErrors(t *testing.T) {
	tests := []struct {
		name, body           string
		field, code, message string
	}{
		{"string where an object goes", `{"account":5}`, "account", "invalid_type", "account must be an object, not a JSON number"},
		{"nested wrong type", `{"label":"legit","account":{"id":5}}`, "account.id", "invalid_type", "account.id must be string, not a JSON number"},
		{"label of the wrong type", `{"label":5}`, "label", "invalid_type", "label must be string, not a JSON number"},
		{"unknown field", `{"label":"legit","labels":[]}`, "labels", "unknown_field", `unknown field "labels"`},
		{"not an object", `"fraud"`, "", "invalid_json", "the body must be a JSON object"},
		{"two objects", `{"amount":1,"label":"fraud"}{}`, "", "invalid_json", "the body must hold exactly one JSON object"},
		{"string amount", `{"amount":"1","label":"fraud"}`, "amount", "invalid_type", "amount must be an integer in minor units, not a JSON string or other value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := engine.DecodeLabelledPayment([]byte(tt.body))
			checkFieldError(t, err, tt.field, tt.code, tt.message)
		})
	}
}

func checkFieldError(tb testing.TB, err error, field, code, message string) {
	tb.Helper()
	var fe *engine.FieldError
	if !errors.As(err, &fe) {
		tb.Fatalf("err = %v, want a *FieldError", err)
	}
	if fe.Field != field || fe.Code != code || fe.Message != message {
		tb.Errorf("got  %q %s %q\nwant %q %s %q", fe.Field, fe.Code, fe.Message, field, code, message)
	}
	if !errors.Is(err, engine.ErrInvalid) {
		tb.Errorf("%v does not match ErrInvalid", err)
	}
}
