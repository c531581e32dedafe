package server

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestDecisionJSONMatchesEncoder holds appendJSON to what encoding/json
// writes through Echo's serializer, over generated responses with every
// optional field present or absent, strings that need escaping (quotes,
// control characters, HTML, U+2028, invalid UTF-8), floats at the edges of
// encoding/json's two formats, and times in other zones. Where appendJSON
// declines, encoding/json must fail too.
func TestDecisionJSONMatchesEncoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		d := genDecisionJSON(rng)
		checkDecisionJSON(t, &d, i)
	}
	for _, f := range []float64{math.NaN(), math.Inf(1)} {
		d := decisionJSON{Limits: limitsJSON{Trust: &f}}
		checkDecisionJSON(t, &d, -1)
	}
	year10000 := decisionJSON{EvaluatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	checkDecisionJSON(t, &year10000, -2)
}

func checkDecisionJSON(t *testing.T, d *decisionJSON, i int) {
	t.Helper()
	var want bytes.Buffer
	werr := json.NewEncoder(&want).Encode(d) // what Echo's DefaultJSONSerializer does
	got, ok := d.appendJSON(nil)
	switch {
	case !ok && werr == nil:
		t.Fatalf("case %d: appendJSON declined what encoding/json writes:\n%s", i, want.Bytes())
	case ok && werr != nil:
		t.Fatalf("case %d: appendJSON wrote what encoding/json refuses (%v):\n%s", i, werr, got)
	case ok && !bytes.Equal(got, want.Bytes()):
		t.Fatalf("case %d:\n got %s\nwant %s", i, got, want.Bytes())
	}
}

var jsonPalette = []string{"", "a", "dec_0123", "é", "\"", "\\", "<", ">", "&", "\n", "\t", "\r", "\b", "\f",
	"\x00", "\x1f", "\x7f", "\u2028", "\u2029", "\xff", "\xe2\x80", "日本", "😀", " ", "/"}

func genString(rng *rand.Rand) string {
	var b []byte
	for range rng.IntN(4) {
		b = append(b, jsonPalette[rng.IntN(len(jsonPalette))]...)
	}
	return string(b)
}

func genFloat(rng *rand.Rand) float64 {
	edges := []float64{0, math.Copysign(0, -1), 1, 1.25, -0.5, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 1.5e21, 123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64, 1e-10}
	if rng.IntN(2) == 0 {
		return edges[rng.IntN(len(edges))]
	}
	return (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(50)-25))
}

func genDecisionJSON(rng *rand.Rand) decisionJSON {
	maybeInt := func() *int64 {
		if rng.IntN(3) == 0 {
			return nil
		}
		v := rng.Int64() - math.MaxInt64/2
		return &v
	}
	maybeFloat := func() *float64 {
		if rng.IntN(3) == 0 {
			return nil
		}
		v := genFloat(rng)
		return &v
	}
	zones := []*time.Location{time.UTC, time.FixedZone("CET", 3600), time.FixedZone("X", -(5*3600 + 30*60))}
	at := time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(zones[rng.IntN(len(zones))])
	d := decisionJSON{
		DecisionID: genString(rng), TransactionID: genString(rng), Decision: genString(rng),
		Score: rng.IntN(400) - 200, RulesetVersion: rng.Int64N(1 << 40), Degraded: rng.IntN(2) == 0,
		DegradedCause: genString(rng), EvaluatedAt: at, Replayed: rng.IntN(2) == 0,
		Review: rng.IntN(2) == 0,
	}
	if rng.IntN(5) > 0 {
		d.Reasons = make([]reasonJSON, rng.IntN(3))
		for i := range d.Reasons {
			d.Reasons[i] = reasonJSON{Rule: genString(rng), Code: genString(rng), Message: genString(rng)}
		}
	}
	l := &d.Limits
	l.Entity, l.Currency, l.Policy, l.Segment, l.BaseCurrency = genString(rng), genString(rng), genString(rng), genString(rng), genString(rng)
	l.SingleMax, l.DailyMax, l.DailyRemaining, l.DailySpent = maybeInt(), maybeInt(), maybeInt(), maybeInt()
	l.BaseSingleMax, l.BaseDailyMax = maybeInt(), maybeInt()
	l.Trust, l.Rate = maybeFloat(), maybeFloat()
	switch rng.IntN(3) {
	case 0:
		l.Adjustments = []string{}
	case 1:
		l.Adjustments = []string{genString(rng), genString(rng)}
	}
	if rng.IntN(2) == 0 {
		l.Override = &overrideJSON{SingleMax: rng.Int64(), DailyMax: -rng.Int64(), Reason: genString(rng), Author: genString(rng), ExpiresAt: at.Add(time.Hour)}
	}
	return d
}

// FuzzDecisionJSON feeds arbitrary strings and numbers to appendJSON and
// holds it to encoding/json.
func FuzzDecisionJSON(f *testing.F) {
	f.Add("dec_1", "tx<1>", "deny", "\u2028\xff", 1.5, int64(3))
	f.Fuzz(func(t *testing.T, id, tx, reason, cause string, trust float64, n int64) {
		d := decisionJSON{
			DecisionID: id, TransactionID: tx, Decision: "deny", Score: int(n),
			Reasons: []reasonJSON{{Rule: reason, Code: cause, Message: id}}, DegradedCause: cause,
			Limits:      limitsJSON{Entity: tx, Trust: &trust, DailyMax: &n, Adjustments: []string{reason}},
			EvaluatedAt: time.Unix(n%4e9, 0).UTC(), Review: n%2 == 0,
		}
		checkDecisionJSON(t, &d, 0)
	})
}

// BenchmarkDecisionJSON compares appendJSON with encoding/json on a
// typical response: two reasons, limits with a trust adjustment.
func BenchmarkDecisionJSON(b *testing.B) {
	single, daily, rem, spent, trust := int64(50000), int64(200000), int64(150000), int64(50000), 1.25
	d := decisionJSON{
		DecisionID: "dec_8y8zx4mgfpwxr4v5g5226hrjjw", TransactionID: "tx_1001", Decision: "challenge", Score: 45,
		Reasons: []reasonJSON{{Rule: "new_device", Code: "device", Message: "payment from a new device"}, {Rule: "velocity", Code: "velocity", Message: "many payments on this card"}},
		Limits: limitsJSON{Entity: "account:acc_42", Currency: "EUR", SingleMax: &single, DailyMax: &daily, DailyRemaining: &rem,
			DailySpent: &spent, Trust: &trust, Policy: "default", Segment: "new", Adjustments: []string{"trust 1.25: 30 days clean"}},
		RulesetVersion: 7, EvaluatedAt: time.Date(2026, 12, 2, 16, 0, 0, 123456789, time.UTC),
	}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf, _ = d.appendJSON(buf[:0])
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			if err := json.NewEncoder(&buf).Encode(&d); err != nil {
				b.Fatal(err)
			}
		}
	})
}
