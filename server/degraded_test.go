package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
)

// TestSlowFeatureStoreDegrades: a feature store slower than the budget
// yields, within the budget, a decision marked degraded with its cause and
// at least as strict as the fallback of the merchant.
func TestSlowFeatureStoreDegrades(t *testing.T) {
	const budget = 30 * time.Millisecond
	slow := featuresFunc(func(ctx context.Context, p *engine.Payment, dst []engine.FeatureValue) ([]engine.FeatureValue, error) {
		if p.Merchant.ID == "m_fast" {
			return dst, nil
		}
		<-ctx.Done() // a stuck disk: only the budget ends it
		return dst, ctx.Err()
	})
	e := newEdge(t, edgeOptions{
		features: slow, budget: budget, fallback: engine.Challenge, metrics: true,
		byMerch: map[string]engine.Outcome{"m_strict": engine.Deny, "m_lenient": engine.Allow},
	})
	tests := []struct {
		name         string
		merchant     string
		want         string
		wantDegraded bool
	}{
		{"default fallback", "m_1", "challenge", true},
		{"merchant that denies", "m_strict", "deny", true},
		{"merchant that allows", "m_lenient", "allow", true},
		{"fast features are not degraded", "m_fast", "allow", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := set(payment("t_slow_"+tt.merchant), "merchant.id", tt.merchant)
			start := time.Now()
			code, _, data := e.send("", "POST", "/v1/decisions", body)
			took := time.Since(start)
			if code != http.StatusOK {
				t.Fatalf("status %d %s", code, data)
			}
			d := decodeJSON[struct {
				decision
				DegradedCause string `json:"degraded_cause"`
			}](t, data)
			if d.Decision != tt.want || d.Degraded != tt.wantDegraded {
				t.Errorf("decision = %s degraded %v, want %s degraded %v", d.Decision, d.Degraded, tt.want, tt.wantDegraded)
			}
			if tt.wantDegraded && d.DegradedCause != "deadline" {
				t.Errorf("degraded_cause = %q", d.DegradedCause)
			}
			if took > budget+time.Second {
				t.Errorf("took %v with a budget of %v", took, budget)
			}
			// The explanation says the same, durably.
			code, _, data = e.send("", "GET", "/v1/decisions/"+d.DecisionID, nil)
			x := decodeJSON[struct {
				Degraded      bool   `json:"degraded"`
				DegradedCause string `json:"degraded_cause"`
				DeterminedBy  string `json:"determined_by"`
			}](t, data)
			if code != http.StatusOK || x.Degraded != tt.wantDegraded || x.DegradedCause != d.DegradedCause {
				t.Errorf("explanation = %d %+v", code, x)
			}
			if tt.want == "deny" || tt.want == "challenge" {
				if x.DeterminedBy != "fallback" {
					t.Errorf("determined_by = %q, want fallback", x.DeterminedBy)
				}
			}
		})
	}
	// Three degraded decisions, two of them raised to their fallback.
	m := scrape(t, e)
	for _, want := range []string{
		`risk_decisions_degraded_total{cause="deadline"} 3`,
		`risk_decisions_degraded_total{cause="rules_deadline"} 0`,             // once per decision, by first cause
		`risk_decisions_degraded_total{cause="decision_store_unavailable"} 0`, // exported before the first event
		`risk_decisions_fallback_total 2`,
		`risk_decisions_total{outcome="deny"} 1`,
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestDegradedCauseIsACode: a failing feature store degrades the decision
// with a stable code; the storage error, which names files and internals,
// is logged and never sent to the gateway, in the answer or the
// explanation.
func TestDegradedCauseIsACode(t *testing.T) {
	const secret = "badger: read /var/lib/risk/000042.vlog: input/output error"
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"store down", errors.New(secret), "feature_store_unavailable"},
		{"state corrupt", fmt.Errorf("card fp_1: %s: %w", secret, engine.ErrCorrupt), "state_corrupt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEdge(t, edgeOptions{
				fallback: engine.Challenge, metrics: true,
				features: featuresFunc(func(context.Context, *engine.Payment, []engine.FeatureValue) ([]engine.FeatureValue, error) {
					return nil, tt.err
				}),
			})
			code, _, data := e.send("", "POST", "/v1/decisions", payment("t_cause"))
			d := decodeJSON[struct {
				decision
				DegradedCause string `json:"degraded_cause"`
			}](t, data)
			if code != http.StatusOK || !d.Degraded || d.DegradedCause != tt.want || d.Decision != "challenge" {
				t.Errorf("got %d %s, want challenge degraded by %s", code, data, tt.want)
			}
			_, _, expl := e.send("", "GET", "/v1/decisions/"+d.DecisionID, nil)
			for _, body := range [][]byte{data, expl} {
				if strings.Contains(string(body), "vlog") {
					t.Errorf("the storage error reached the gateway: %s", body)
				}
			}
			if logs := e.logs.String(); !strings.Contains(logs, "000042.vlog") || !strings.Contains(logs, `"cause":"`+tt.want+`"`) {
				t.Errorf("the error is not logged with its cause:\n%s", logs)
			}
			if m := scrape(t, e); !strings.Contains(m, `risk_decisions_degraded_total{cause="`+tt.want+`"} 1`+"\n") {
				t.Errorf("metric of %s not counted", tt.want)
			}
		})
	}
}
