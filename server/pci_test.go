package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/riskengine/risk/features/kv"
)

// Test card numbers (they pass the Luhn check).
var pans = []struct{ name, pan string }{
	{"visa 16", "4111111111111111"},
	{"spaced", "4111 1111 1111 1111"},
	{"dashed", "5555-5555-5555-4444"},
	{"amex 15", "378282246310005"},
	{"visa 13", "4222222222222"},
	{"19 digits", "6011000990139424000"[:18] + luhnDigit("6011000990139424000"[:18])},
	{"inside text", "card 6011000990139424 declined"},
}

// luhnDigit returns the check digit that makes digits+it pass Luhn.
func luhnDigit(digits string) string {
	sum := 0
	for i := range len(digits) {
		d := int(digits[len(digits)-1-i] - '0')
		if i%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return fmt.Sprint((10 - sum%10) % 10)
}

// panFields puts a card number in each place of a request body; field is
// what the 400 names.
var panFields = []struct {
	field string
	body  func(tx, pan string) any
}{
	{"transaction_id", func(_, pan string) any { return set(payment("x"), "transaction_id", pan) }},
	{"currency", func(tx, pan string) any { return set(payment(tx), "currency", pan) }},
	{"occurred_at", func(tx, pan string) any { return set(payment(tx), "occurred_at", pan) }},
	{"account.id", func(tx, pan string) any { return set(payment(tx), "account.id", pan) }},
	{"account.email", func(tx, pan string) any { return set(payment(tx), "account.email", pan+"@example.com") }},
	{"account.country", func(tx, pan string) any { return set(payment(tx), "account.country", pan) }},
	{"account.created_at", func(tx, pan string) any { return set(payment(tx), "account.created_at", pan) }},
	{"card.fingerprint", func(tx, pan string) any { return set(payment(tx), "card.fingerprint", pan) }},
	{"card.bin", func(tx, pan string) any { return set(payment(tx), "card.bin", pan) }},
	{"card.country", func(tx, pan string) any { return set(payment(tx), "card.country", pan) }},
	{"device.id", func(tx, pan string) any { return set(payment(tx), "device.id", pan) }},
	{"device.ip", func(tx, pan string) any { return set(payment(tx), "device.ip", pan) }},
	{"device.ip_country", func(tx, pan string) any { return set(payment(tx), "device.ip_country", pan) }},
	{"merchant.id", func(tx, pan string) any { return set(payment(tx), "merchant.id", pan) }},
	{"merchant.mcc", func(tx, pan string) any { return set(payment(tx), "merchant.mcc", pan) }},
	{"merchant.country", func(tx, pan string) any { return set(payment(tx), "merchant.country", pan) }},
	{"attributes.note", func(tx, pan string) any { return set(payment(tx), "attributes.note", pan) }},
	// An attribute name is not echoed: the field would carry the number.
	{"attributes", func(tx, pan string) any { return set(payment(tx), "attributes."+pan, "x") }},
	// Numbers: as sent, and hidden in exponent notation.
	{"amount", func(tx, pan string) any { return rawNumber(tx, "amount", digits(pan)) }},
	{"attributes.ref", func(tx, pan string) any { return rawNumber(tx, "attributes.ref", digits(pan)) }},
	{"attributes.ref", func(tx, pan string) any { return rawNumber(tx, "attributes.ref", exponent(digits(pan))) }},
	// An unknown field named like a card number is not echoed either.
	{"", func(tx, pan string) any {
		return strings.Replace(toJSON(payment(tx)), `"amount"`, fmt.Sprintf("%q: 1, \"amount\"", pan), 1)
	}},
}

func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// exponent writes a digit string as 4.111111111111111e15.
func exponent(d string) string { return d[:1] + "." + d[1:] + "e" + fmt.Sprint(len(d)-1) }

// rawNumber is a request body with a JSON number at path (amount or an
// attribute), written as is.
func rawNumber(tx, path, number string) string {
	const marker = "__number__"
	return strings.Replace(toJSON(set(payment(tx), path, marker)), `"`+marker+`"`, number, 1)
}

func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestCardNumbersRefused: a card number anywhere in a decision request is
// refused with 400 card_number_refused naming the field, and nothing of
// the request is stored or logged, not even at debug level.
func TestCardNumbersRefused(t *testing.T) {
	e := newEdge(t, edgeOptions{})
	n := 0
	for _, f := range panFields {
		for _, p := range pans {
			if strings.HasPrefix(f.field, "amount") || strings.HasPrefix(f.field, "attributes.ref") {
				if p.name == "inside text" {
					continue // numbers are digits only
				}
			}
			n++
			t.Run(f.field+"/"+p.name, func(t *testing.T) {
				code, _, data := e.send("", "POST", "/v1/decisions", f.body(fmt.Sprintf("t_pan_%d", n), p.pan))
				body := decodeJSON[apiError](t, data)
				if code != http.StatusBadRequest || body.Code != "card_number_refused" || body.Field != f.field {
					t.Errorf("got %d %s, want 400 card_number_refused on %q", code, data, f.field)
				}
				if bytes.Contains(data, []byte(digits(p.pan))) || bytes.Contains(data, []byte(p.pan)) {
					t.Errorf("the answer echoes the card number: %s", data)
				}
			})
		}
	}
	if seq := e.store.Stats().LastSeq; seq != 0 {
		t.Errorf("%d decisions were stored", seq)
	}
	assertNoPAN(t, e)
	if got := len(e.accessRecords()); got != n {
		t.Errorf("%d access records for %d requests", got, n)
	}
}

// assertNoPAN checks that no card number of pans is in the log or
// anywhere in Badger.
func assertNoPAN(t *testing.T, e *edge) {
	t.Helper()
	logs := e.logs.String()
	var all bytes.Buffer
	err := e.store.KV().View(context.Background(), func(tx kv.Tx) error {
		return tx.Scan(nil, kv.ScanOptions{}, func(k, v []byte) error {
			all.Write(k)
			all.Write(v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pans {
		for _, form := range []string{p.pan, digits(p.pan), exponent(digits(p.pan))} {
			if strings.Contains(logs, form) {
				t.Errorf("the log holds %q", form)
			}
			if bytes.Contains(all.Bytes(), []byte(form)) {
				t.Errorf("Badger holds %q", form)
			}
		}
	}
}

// TestNumbersThatAreNotCards: digit runs that fail Luhn or have the wrong
// length are ordinary data.
func TestNumbersThatAreNotCards(t *testing.T) {
	e := newEdge(t, edgeOptions{})
	for i, v := range []any{
		"4111111111111112",     // fails Luhn
		"4111 1111 1111 1112",  // spaced, fails Luhn
		"411111111111",         // 12 digits
		"41111111111111111111", // 20 digits
		"order 1234-5678",      // short groups
		4111111111111112.0,     // number, fails Luhn
		"2026-11-22T10:00:00Z", // a time
	} {
		body := set(payment(fmt.Sprintf("t_notpan_%d", i)), "attributes.ref", v)
		if code, _, data := e.send("", "POST", "/v1/decisions", body); code != http.StatusOK {
			t.Errorf("%v: %d %s, want 200", v, code, data)
		}
	}
	body := set(payment("t_notpan_id"), "account.id", "acc_4111111111111112")
	if code, _, data := e.send("", "POST", "/v1/decisions", body); code != http.StatusOK {
		t.Errorf("account id with a non-card number: %d %s", code, data)
	}
}
