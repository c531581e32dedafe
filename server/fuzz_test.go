package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
)

// FuzzDecodePayment sends any body to POST /v1/decisions through the real
// handler, engine and store. Whatever the body, the answer is a decision
// (200, stored whole, valid, holding no card number) or a 4xx with a
// machine code, and nothing is stored for a 4xx. Never a 5xx.
//
// Seeds: testdata/fuzz/FuzzDecodePayment and the bodies below.
// Run: go test -run='^$' -fuzz=FuzzDecodePayment -fuzztime=10s ./server
func FuzzDecodePayment(f *testing.F) {
	for _, b := range []string{
		toJSON(payment("t_seed")),
		`{"transaction_id":"t1","amount":1,"currency":"EUR"}`,
		`{"transaction_id":"t2","amount":100,"currency":"USD","attributes":{"n":4.5e3,"ok":true,"s":"x"}}`,
		`{"transaction_id":"t3","amount":"100","currency":"USD"}`,
		`{"transaction_id":"t4","amount":100,"currency":"USD","card":{"number":"4111111111111111"}}`,
		`{"transaction_id":"t5","amount":100,"currency":"USD","attributes":{"ref":4.111111111111111e15}}`,
		`{"transaction_id":"t6","amount":100,"currency":"USD","occurred_at":"2026-01-02T03:04:05.999Z"}`,
		`[]`, `{`, ``, `null`, `{"amount":-1}`,
	} {
		f.Add([]byte(b))
	}
	e := newEdge(f, edgeOptions{budget: time.Second}) // a slow machine must not turn fuzzing into degraded noise
	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		before := e.store.Stats().LastSeq
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequest("POST", "/v1/decisions", bytes.NewReader(body)))
		after := e.store.Stats().LastSeq
		switch {
		case rr.Code == http.StatusOK:
			var d struct {
				DecisionID    string `json:"decision_id"`
				Decision      string `json:"decision"`
				Degraded      bool   `json:"degraded"`
				DegradedCause string `json:"degraded_cause"`
				Replayed      bool   `json:"replayed"`
			}
			if err := json.Unmarshal(rr.Body.Bytes(), &d); err != nil {
				t.Fatalf("200 with a body that is not a decision: %q", rr.Body)
			}
			if !engine.Outcome(d.Decision).Valid() {
				t.Fatalf("decision %q", d.Decision)
			}
			rec, err := e.store.Get(context.Background(), d.DecisionID)
			if err != nil {
				t.Fatalf("acknowledged decision %s is not stored (%v); degraded %q", d.DecisionID, err, d.DegradedCause)
			}
			if want := before + 1; !d.Replayed && after != want {
				t.Fatalf("sequence %d -> %d for one decision", before, after)
			}
			if rec.Seq == 0 || rec.TransactionID == "" || rec.RequestHash == "" || string(rec.Outcome) != d.Decision {
				t.Fatalf("stored record is partial: %+v", rec.Decision)
			}
			if err := rec.Payment.Validate(time.Now()); err != nil {
				t.Fatalf("stored payment is invalid: %v", err)
			}
			if field, ok := panIn(&rec.Payment, rec.Request); ok {
				t.Fatalf("a card number was stored in %s", field)
			}
		case rr.Code >= 400 && rr.Code < 500:
			var e apiError
			if err := json.Unmarshal(rr.Body.Bytes(), &e); err != nil || e.Code == "" || e.Message == "" {
				t.Fatalf("%d without a machine code: %q", rr.Code, rr.Body)
			}
			if after != before {
				t.Fatalf("%d %s, yet %d record(s) were stored", rr.Code, e.Code, after-before)
			}
		default:
			t.Fatalf("status %d for %q: %s", rr.Code, body, rr.Body)
		}
	})
}

// panIn reports the first place of a stored payment or request that looks
// like a card number.
func panIn(p *engine.Payment, raw []byte) (string, bool) {
	for _, path := range engine.PaymentPaths {
		v, ok := p.Field(path)
		if s, isStr := v.(string); ok && isStr && engine.LooksLikePAN(s) {
			return path, true
		}
	}
	for k, v := range p.Attributes {
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case float64:
			s = strconv.FormatFloat(v, 'f', -1, 64)
		}
		if engine.LooksLikePAN(k) || engine.LooksLikePAN(s) {
			return "attributes." + k, true
		}
	}
	if engine.LooksLikePAN(string(raw)) {
		return "the request as received", true
	}
	return "", false
}
