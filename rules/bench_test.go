package rules_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/rules"
)

// benchExprs is a mix of the shapes analysts write: payment fields,
// features, lists, CIDR and membership tests. %d makes each rule distinct.
var benchExprs = []string{
	`amount > %d`,
	`card.country != device.ip_country && amount > %d`,
	`features.card_attempts_1h >= %d`,
	`features.device_distinct_cards_24h > %d`,
	`in_list("blocked_cards", card.fingerprint) && amount > %d`,
	`account.age_days < 7 && amount > %d`,
	`attributes.channel == "web" && amount > %d`,
	`merchant.mcc in ["7995", "6051"] && amount > %d`,
	`ip_in_cidr(device.ip, "10.0.0.0/8") && amount > %d`,
	`currency == "USD" && amount > %d`,
}

type benchLists struct{}

func (benchLists) Contains(list, value string) bool {
	return list == "blocked_cards" && value == "fp_bad"
}

// BenchmarkEvaluate is rule evaluation alone (env building and every rule
// of the set) for one payment, at the rule-set sizes of issue 8.
func BenchmarkEvaluate(b *testing.B) {
	env := rules.Env{Features: []string{"card_attempts_1h", "device_distinct_cards_24h"}, Lists: benchLists{}}
	p := &engine.Payment{
		TransactionID: "tx_1", OccurredAt: time.Now(), Amount: 12999, Currency: "USD",
		Account:    engine.Account{ID: "acc_1", CreatedAt: time.Now().Add(-400 * 24 * time.Hour), Country: "US"},
		Card:       engine.Card{Fingerprint: "fp_1", BIN: "411111", Country: "US"},
		Device:     engine.Device{ID: "dev_1", IP: "203.0.113.7", IPCountry: "US"},
		Merchant:   engine.Merchant{ID: "m_1", MCC: "5999", Country: "US"},
		Attributes: map[string]any{"channel": "web", "items": 3.0},
	}
	in := &engine.Input{
		Payment:  p,
		Features: []engine.FeatureValue{{Name: "card_attempts_1h", Value: 2, Ready: true}, {Name: "device_distinct_cards_24h", Value: 1, Ready: true}},
		Now:      time.Now(),
	}
	for _, n := range []int{50, 200, 1000} {
		spec := rules.Spec{ChallengeThreshold: 40, DenyThreshold: 80}
		for i := range n {
			spec.Rules = append(spec.Rules, rules.Rule{
				ID:         "r" + strconv.Itoa(i),
				Expression: fmt.Sprintf(benchExprs[i%len(benchExprs)], 100000+i),
				Action:     engine.ActionScore, Score: 5, Reason: "r", Message: "m",
			})
		}
		set, err := rules.Compile(spec, env, 1)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("rules="+strconv.Itoa(n), func(b *testing.B) {
			dst := make([]engine.RuleResult, 0, n)
			b.ReportAllocs()
			for b.Loop() {
				dst = set.Evaluate(context.Background(), in, dst[:0])
				if len(dst) != n || dst[0].Error != "" {
					b.Fatalf("got %d results, first %+v", len(dst), dst[0])
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/rule")
		})
	}
}
