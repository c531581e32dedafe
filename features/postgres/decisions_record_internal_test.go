package postgres

import (
	"math"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
)

// Feature values and limits that are not finite survive the JSON document.
func TestRecordNonFiniteNumbers(t *testing.T) {
	rec := &engine.Record{
		Decision: engine.Decision{ID: "dec_x", TransactionID: "tx", EvaluatedAt: time.Unix(0, 0).UTC(),
			Limits: engine.Limits{Trust: math.Inf(1), Rate: math.Inf(-1)}},
		Features: []engine.FeatureValue{{Name: "nan", Value: math.NaN()}, {Name: "tiny", Value: 5e-324}, {Name: "big", Value: 1.7976931348623157e308}},
	}
	doc, err := encodeRecord(rec)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	got, err := decodeRecord(1, doc, nil)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !math.IsNaN(got.Features[0].Value) || got.Features[1].Value != 5e-324 || got.Features[2].Value != 1.7976931348623157e308 {
		t.Errorf("features %+v", got.Features)
	}
	if !math.IsInf(got.Limits.Trust, 1) || !math.IsInf(got.Limits.Rate, -1) {
		t.Errorf("limits trust %v rate %v", got.Limits.Trust, got.Limits.Rate)
	}
}

func TestDecodeRecordRefusesOtherVersions(t *testing.T) {
	for _, doc := range []string{`{"v":2,"id":"dec_x"}`, `{"id":"dec_x"}`, `[]`, `{"v":1,"features":[{"value":"x"}]}`} {
		if _, err := decodeRecord(1, []byte(doc), nil); err == nil {
			t.Errorf("decode %s: no error", doc)
		}
	}
}

// FuzzDecodeRecord: a stored document, whatever it holds, decodes or
// fails; it never panics, and what decodes encodes again.
func FuzzDecodeRecord(f *testing.F) {
	doc, err := encodeRecord(&engine.Record{
		Decision: engine.Decision{ID: "dec_x", TransactionID: "tx", Outcome: engine.Deny},
		Rules:    []engine.RuleResult{{RuleInfo: &engine.RuleInfo{ID: "r"}, Matched: true}},
		Request:  []byte(`{"a":1}`),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(doc, []byte(`[{"label":"fraud"}]`))
	f.Add([]byte(`{"v":1,"limits":{"trust":"NaN"}}`), []byte(`[]`))
	f.Fuzz(func(t *testing.T, doc, labels []byte) {
		rec, err := decodeRecord(1, doc, labels)
		if err != nil {
			return
		}
		if _, err := encodeRecord(rec); err != nil && len(rec.Payment.Attributes) == 0 {
			t.Errorf("re-encode: %v", err)
		}
	})
}

func TestCheckStorable(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*engine.Record)
		ok   bool
	}{
		{"plain", func(*engine.Record) {}, true},
		{"backslash u0000 as text", func(r *engine.Record) { r.Payment.Attributes = map[string]any{"a": `\u0000`} }, true},
		{"three backslashes then NUL", func(r *engine.Record) { r.Payment.Attributes = map[string]any{"a": "\\\x00"} }, false},
		{"NUL in an attribute", func(r *engine.Record) { r.Payment.Attributes = map[string]any{"a": "x\x00y"} }, false},
		{"NUL in an attribute name", func(r *engine.Record) { r.Payment.Attributes = map[string]any{"a\x00": "x"} }, false},
		{"NUL in the account", func(r *engine.Record) { r.Payment.Account.ID = "a\x00" }, false},
		{"invalid UTF-8 in the card", func(r *engine.Record) { r.Payment.Card.Fingerprint = "\xff" }, false},
		{"NUL in the request body", func(r *engine.Record) { r.Request = []byte("{\x00}") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &engine.Record{Decision: engine.Decision{ID: "dec_x", TransactionID: "tx"}}
			tc.edit(rec)
			doc, err := encodeRecord(rec)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkStorable(rec, doc); (err == nil) != tc.ok {
				t.Errorf("checkStorable: %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// BenchmarkDecodeRecord decodes the stored document of a decision with 50
// rule results and 20 features, as each decision-log reader of a cluster's
// leader does for every decision.
func BenchmarkDecodeRecord(b *testing.B) {
	rec := &engine.Record{
		Decision: engine.Decision{ID: "dec_bench", TransactionID: "tx_bench", Outcome: engine.Challenge, Score: 55,
			EvaluatedAt: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC),
			Limits:      engine.Limits{Entity: "account:acc_1", Currency: "USD", SingleMax: 100000, DailyMax: 300000, Trust: 1}},
		Payment: engine.Payment{TransactionID: "tx_bench", Amount: 12345, Currency: "USD",
			Account: engine.Account{ID: "acc_1", Country: "DE"}, Card: engine.Card{Fingerprint: "fp_1", BIN: "424242", Country: "DE"},
			Device: engine.Device{ID: "dev_1", IP: "10.1.2.3"}, Merchant: engine.Merchant{ID: "m_1", MCC: "5411"}},
		Request: []byte(`{"transaction_id":"tx_bench","amount":12345,"currency":"USD"}`),
	}
	for i := range 50 {
		info := &engine.RuleInfo{ID: "rule_" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Name: "a rule of the benchmark",
			Version: 3, Action: engine.ActionChallenge, Score: 10, Reason: "reason text of the rule"}
		rec.Rules = append(rec.Rules, engine.RuleResult{RuleInfo: info, Matched: i%7 == 0})
	}
	for i := range 20 {
		rec.Features = append(rec.Features, engine.FeatureValue{Name: "feature_" + string(rune('a'+i)), Value: float64(i) * 1.5, Ready: true})
	}
	doc, err := encodeRecord(rec)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRecord(1, doc, nil); err != nil {
			b.Fatal(err)
		}
	}
}
