package engine

import (
	"reflect"
	"testing"
)

// scanSeeds are bodies of the common shape and near misses of it.
var scanSeeds = []string{
	`{"transaction_id":"t1","amount":1299,"currency":"EUR","occurred_at":"2026-11-22T10:00:00Z",` +
		`"account":{"id":"a1","email":"a@example.com","created_at":"2025-01-02T00:00:00Z","country":"DE"},` +
		`"card":{"fingerprint":"fp1","bin":"411111","country":"DE"},"device":{"id":"d1","ip":"203.0.113.7","ip_country":"FR"},` +
		`"merchant":{"id":"m1","mcc":"5999","country":"DE"},"attributes":{"channel":"web","items":3,"gift":true,"ratio":-0.5e-3}}`,
	` { "transaction_id" : "t2" , "amount" : 5 , "currency" : "USD" , "attributes" : { } } `,
	`{"transaction_id":"t3","amount":5,"currency":"USD","attributes":{"a":1},"attributes":{"b":"x"}}`,
	`{"transaction_id":"t4","amount":5,"amount":7,"currency":"USD","account":{"id":"x"},"account":{"email":"e"}}`,
	`{"transaction_id":"t5","amount":"5","currency":"USD"}`,
	`{"Transaction_ID":"t6","amount":5,"currency":"USD"}`,
	`{"transaction_id":"t\u00e97","amount":5,"currency":"USD"}`,
	`{"transaction_id":"tü8","amount":5,"currency":"USD"}`,
	`{"transaction_id":"t9","amount":5,"currency":"USD","attributes":{"n":null}}`,
	`{"transaction_id":"t10","amount":5,"currency":"USD","attributes":{"n":{"x":1}}}`,
	`{"transaction_id":"t11","amount":5,"currency":"USD","device":{"ip_contry":"FR"}}`,
	`{"transaction_id":"t12","amount":05,"currency":"USD"}`,
	`{"transaction_id":"t13","amount":5,"currency":"USD"} {}`,
	`{"transaction_id":"t14","amount":4111111111111111,"currency":"USD"}`,
	`{"transaction_id":"t15","amount":5,"currency":"USD","attributes":{"ref":4.111111111111111e15}}`,
	`{"transaction_id":"t16","amount":-1.5,"currency":"USD","occurred_at":"yesterday"}`,
	`{"transaction_id":"t17","amount":5,"currency":"USD","label":"fraud"}`,
	`{}`, `[]`, `{`, ``, `null`, `{"amount":1e400}`, `{"amount":1,}`, `{"attributes":{"x":tru}}`,
}

// FuzzScanPayment holds the fast path to encoding/json's result: whenever
// scanPayment accepts a body, DecodePayment through encoding/json alone
// gives the same payment or the same error.
func FuzzScanPayment(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast paymentJSON
		if !scanPayment(body, &fast) {
			return
		}
		var slow paymentJSON
		if err := decodeObject(body, &slow); err != nil {
			t.Fatalf("scanPayment accepted %q; encoding/json: %v", body, err)
		}
		pf, ef := fast.payment()
		ps, es := slow.payment()
		if !reflect.DeepEqual(ef, es) {
			t.Fatalf("%q: error %v (fast) vs %v (encoding/json)", body, ef, es)
		}
		if !reflect.DeepEqual(pf, ps) {
			t.Fatalf("%q:\nfast %+v\njson %+v", body, pf, ps)
		}
	})
}

// TestScanPaymentTakesTheCommonShape pins which seeds the fast path takes,
// so a change that sends every body to encoding/json fails here.
func TestScanPaymentTakesTheCommonShape(t *testing.T) {
	takes := map[int]bool{0: true, 1: true, 2: true, 3: true, 7: true, 13: true, 14: true, 15: true, 17: true, 22: true}
	for i, s := range scanSeeds {
		var w paymentJSON
		if got, want := scanPayment([]byte(s), &w), takes[i]; got != want {
			t.Errorf("scanPayment(%s) = %v, want %v", s, got, want)
		}
	}
}
