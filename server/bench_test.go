package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/rules"
)

// fiftyRules is a realistic mix of 50 rules over payment fields, features
// and lists.
func fiftyRules() *rules.Spec {
	spec := &rules.Spec{ChallengeThreshold: 40, DenyThreshold: 80}
	exprs := []string{
		`amount > %d`,
		`card.country != device.ip_country && amount > %d`,
		`features.card_attempts_10m >= %d`,
		`features.device_distinct_cards_24h > %d`,
		`in_list("blocked_cards", card.fingerprint) && amount > %d`,
		`account.age_days < 7 && amount > %d`,
		`attributes.channel == "web" && amount > %d`,
		`features.account_amount_7d > %d`,
		`merchant.mcc in ["7995", "6051"] && amount > %d`,
		`ip_in_cidr(device.ip, "10.0.0.0/8") && amount > %d`,
	}
	for i := 0; i < 50; i++ {
		spec.Rules = append(spec.Rules, rules.Rule{
			ID:         "r" + strconv.Itoa(i),
			Expression: fmt.Sprintf(exprs[i%len(exprs)], 100000+i),
			Action:     engine.ActionScore, Score: 5, Reason: "r", Message: "m",
		})
	}
	return spec
}

// latencies records per-operation durations and reports percentiles.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	b.ReportMetric(float64(l[len(l)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(l[len(l)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkDecideInProcess is the whole decision in-process: validation,
// idempotency lookup, 12 features read, 50 rules, durable commit and
// feature update. Run with -benchtime=20000x for stable percentiles.
func BenchmarkDecideInProcess(b *testing.B) {
	s := newStack(b, b.TempDir(), fiftyRules())
	base := decodeBench(b)
	lat := make(latencies, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := base
		p.TransactionID = "bench_" + strconv.Itoa(i)
		p.Card.Fingerprint = "fp_" + strconv.Itoa(i%5000)
		p.Account.ID = "acc_" + strconv.Itoa(i%20000)
		p.Device.ID = "dev_" + strconv.Itoa(i%8000)
		start := time.Now()
		rec, _, err := s.engine.Decide(context.Background(), p, nil)
		lat = append(lat, time.Since(start))
		if err != nil || rec.Degraded {
			b.Fatalf("decide: %v %+v", err, rec)
		}
	}
	b.StopTimer()
	lat.report(b)
}

// BenchmarkDecideParallel measures throughput with every core deciding.
func BenchmarkDecideParallel(b *testing.B) {
	s := newStack(b, b.TempDir(), fiftyRules())
	base := decodeBench(b)
	var n atomicCounter
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.next()
			p := base
			p.TransactionID = "bench_" + strconv.Itoa(i)
			p.Card.Fingerprint = "fp_" + strconv.Itoa(i%5000)
			p.Account.ID = "acc_" + strconv.Itoa(i%20000)
			p.Device.ID = "dev_" + strconv.Itoa(i%8000)
			if _, _, err := s.engine.Decide(context.Background(), p, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHTTPDecision is one POST /v1/decisions through the Echo handler
// (no network): bytes in, bytes out.
func BenchmarkHTTPDecision(b *testing.B) {
	s := newStack(b, b.TempDir(), fiftyRules())
	h := s.srv.Handler()
	lat := make(latencies, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body := benchBody(i)
		req := httptest.NewRequest(http.MethodPost, "/v1/decisions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, req)
		lat = append(lat, time.Since(start))
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.StopTimer()
	lat.report(b)
}

func benchBody(i int) []byte {
	return fmt.Appendf(nil, `{"transaction_id":"hb_%d","amount":%d,"currency":"USD",`+
		`"account":{"id":"acc_%d","email":"u%d@example.com","created_at":"2025-01-02T00:00:00Z","country":"US"},`+
		`"card":{"fingerprint":"fp_%d","bin":"411111","country":"US"},"device":{"id":"dev_%d","ip":"203.0.113.7","ip_country":"US"},`+
		`"merchant":{"id":"m_1","mcc":"5999","country":"US"},"attributes":{"channel":"web","items":3}}`,
		i, 1000+i%5000, i%20000, i%20000, i%5000, i%8000)
}

func decodeBench(b *testing.B) engine.Payment {
	return engine.Payment{
		Amount: 12999, Currency: "USD",
		Account:    engine.Account{Email: "a@example.com", CreatedAt: time.Now().Add(-300 * 24 * time.Hour), Country: "US"},
		Card:       engine.Card{BIN: "411111", Country: "US"},
		Device:     engine.Device{ID: "dev_7", IP: "203.0.113.7", IPCountry: "US"},
		Merchant:   engine.Merchant{ID: "m_1", MCC: "5999", Country: "US"},
		Attributes: map[string]any{"channel": "web", "items": 3.0},
	}
}
