package server_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/limits"
)

// TestAcceptanceFeedbackLoop is the scenario of issue 5: an honest account
// is stepped up above its limit, passes, is trusted more the next day, and
// a chargeback closes the door again.
func TestAcceptanceFeedbackLoop(t *testing.T) {
	s := newFBStack(t)
	for range 3 { // normal history
		if d := s.decide(s.pay("acc_honest", "fp_honest", 4_000)); d.Decision != "allow" {
			t.Fatalf("history payment: %s (%s)", d.Decision, d.codes())
		}
		s.clock.add(time.Hour)
	}

	// 1. Above single_max: challenged, naming the limit.
	big := s.decide(s.pay("acc_honest", "fp_honest", 110_000))
	if big.Decision != "challenge" || !strings.Contains(big.codes(), "over_single_limit") {
		t.Fatalf("large purchase: %s (%s), want challenge over_single_limit", big.Decision, big.codes())
	}
	if big.Limits.SingleMax != 100_000 || big.Limits.Entity != "account:acc_honest" || big.Limits.Segment != "established" {
		t.Errorf("limits = %+v", big.Limits)
	}

	// 2. The gateway reports the challenge passed; a repeat changes nothing.
	fb := s.feedback("/v1/decisions/"+big.DecisionID+"/feedback", map[string]any{"label": "challenge_passed", "note": "3DS ok"})
	if !fb.Added || !fb.Effects.Applied || *fb.Effects.TrustBefore != 1 || *fb.Effects.TrustAfter != 1.25 {
		t.Fatalf("challenge_passed = %+v", fb)
	}
	again := s.feedback("/v1/decisions/"+big.DecisionID+"/feedback", map[string]any{"label": "challenge_passed"})
	if again.Added || again.Effects.Applied || *again.Effects.TrustAfter != 1.25 || len(again.Labels) != 1 {
		t.Fatalf("repeated challenge_passed = %+v, want no change", again)
	}

	// 3. Next day, same size: allowed; the explanation shows why.
	s.clock.add(26 * time.Hour)
	next := s.decide(s.pay("acc_honest", "fp_honest", 110_000))
	if next.Decision != "allow" {
		t.Fatalf("next day: %s (%s), want allow", next.Decision, next.codes())
	}
	var exp fbDecision
	if code := s.call("GET", "/v1/decisions/"+next.DecisionID, nil, &exp); code != http.StatusOK {
		t.Fatalf("explanation: %d", code)
	}
	adj := strings.Join(exp.Limits.Adjustments, "; ")
	if exp.Limits.SingleMax != 125_000 || exp.Limits.BaseSingleMax != 100_000 || exp.Limits.Trust != 1.25 ||
		!strings.Contains(adj, "challenge_passed on decision "+big.DecisionID+" raised trust from 1 to 1.25") {
		t.Errorf("explanation limits = %+v", exp.Limits)
	}
	var first fbDecision
	s.call("GET", "/v1/decisions/"+big.DecisionID, nil, &first)
	if len(first.Labels) != 1 || first.Labels[0].Label != "challenge_passed" || first.Labels[0].Source != "dev" {
		t.Errorf("labels in the explanation = %+v", first.Labels)
	}

	// 4. A chargeback, reported by transaction id: trust to the floor and
	// the card on the block list.
	cb := s.feedback("/v1/feedback", map[string]any{"transaction_id": next.TransactionID, "label": "chargeback"})
	if *cb.Effects.TrustAfter != 0.25 || len(cb.Effects.Blocked) != 1 || cb.Effects.Blocked[0].Value != "fp_honest" {
		t.Fatalf("chargeback = %+v", cb)
	}
	s.clock.add(time.Hour)
	if d := s.decide(s.pay("acc_honest", "fp_honest", 110_000)); d.Decision != "deny" || !strings.Contains(d.codes(), "card_blocked") {
		t.Errorf("after the chargeback, same card: %s (%s), want deny card_blocked", d.Decision, d.codes())
	}
	other := s.decide(s.pay("acc_honest", "fp_other", 110_000))
	if other.Decision != "challenge" || !strings.Contains(other.codes(), "over_single_limit") || other.Limits.SingleMax != 25_000 {
		t.Errorf("after the chargeback, another card: %s (%s) single_max %d, want challenge at 25000",
			other.Decision, other.codes(), other.Limits.SingleMax)
	}

	// The entity's page tells the story.
	var ent struct {
		Trust  float64 `json:"trust"`
		Limits struct {
			SingleMax int64 `json:"single_max"`
		} `json:"limits"`
		History []struct {
			Label      string `json:"label"`
			DecisionID string `json:"decision_id"`
			Cause      string `json:"cause"`
		} `json:"history"`
	}
	if code := s.call("GET", "/admin/limits/account/acc_honest?currency=JPY", nil, &ent); code != http.StatusOK {
		t.Fatalf("GET entity: %d", code)
	}
	if ent.Trust != 0.25 || ent.Limits.SingleMax != 37_500 || len(ent.History) != 2 || ent.History[0].Label != "chargeback" {
		t.Errorf("entity = %+v", ent)
	}
	entries, _, err := s.audit.Query(context.Background(), admin.AuditQuery{Action: "limits"})
	if err != nil || len(entries) != 2 {
		t.Errorf("audit entries = %d (%v), want 2", len(entries), err)
	}

	// Rule statistics: three hits of over_single_limit (the first large
	// purchase, and both after the chargeback, the denied one included), the
	// pass a false positive.
	s.clock.add(time.Second) // the period ends now, exclusive
	var st struct {
		Stats struct {
			Hits           struct{ Active, Shadow, Total int } `json:"hits"`
			Legit          int                                 `json:"legit"`
			FalsePositives int                                 `json:"false_positives"`
			Precision      *float64                            `json:"precision"`
		} `json:"stats"`
	}
	if code := s.call("GET", "/admin/rules/over_single_limit/stats", nil, &st); code != http.StatusOK {
		t.Fatalf("stats: %d", code)
	}
	if st.Stats.Hits.Active != 3 || st.Stats.Legit != 1 || st.Stats.FalsePositives != 1 || st.Stats.Precision == nil || *st.Stats.Precision != 0 {
		t.Errorf("over_single_limit stats = %+v", st.Stats)
	}
}

func TestFeedbackErrors(t *testing.T) {
	s := newFBStack(t)
	d := s.decide(s.pay("acc_1", "fp_1", 1_000))
	tests := []struct {
		name   string
		path   string
		body   any
		status int
		field  string
		code   string
	}{
		{"unknown decision", "/v1/decisions/dec_nope/feedback", map[string]any{"label": "fraud"}, 404, "", "not_found"},
		{"unknown transaction", "/v1/feedback", map[string]any{"transaction_id": "tx_nope", "label": "fraud"}, 404, "", "not_found"},
		{"invalid label", "/v1/decisions/" + d.DecisionID + "/feedback", map[string]any{"label": "stolen"}, 400, "label", "invalid_label"},
		{"missing label", "/v1/feedback", map[string]any{"transaction_id": d.TransactionID}, 400, "label", "required"},
		{"invalid label beats unknown decision", "/v1/decisions/dec_nope/feedback", map[string]any{"label": "meh"}, 400, "label", "invalid_label"},
		{"missing transaction", "/v1/feedback", map[string]any{"label": "legit"}, 400, "transaction_id", "required"},
		{"unknown field", "/v1/feedback", map[string]any{"label": "legit", "transaction_id": d.TransactionID, "lable": 1}, 400, "lable", "unknown_field"},
		{"card number in note", "/v1/feedback", map[string]any{"label": "legit", "transaction_id": d.TransactionID, "note": "card 4111 1111 1111 1111"}, 400, "note", "card_number_refused"},
		{"wrong type", "/v1/feedback", map[string]any{"label": 7}, 400, "label", "invalid_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e apiError
			if got := s.call("POST", tt.path, tt.body, &e); got != tt.status || e.Field != tt.field || e.Code != tt.code {
				t.Errorf("status %d field %q code %q, want %d %q %q (%s)", got, e.Field, e.Code, tt.status, tt.field, tt.code, e.Message)
			}
		})
	}
	// An unknown currency is refused at request time, not priced as 0.
	var e apiError
	body := s.pay("acc_1", "fp_1", 1_000)
	body["currency"] = "ZAR"
	if got := s.call("POST", "/v1/decisions", body, &e); got != 400 || e.Field != "currency" || e.Code != "unknown_currency" {
		t.Errorf("unknown currency: %d %+v", got, e)
	}
}

func TestConcurrentFeedbackOverHTTP(t *testing.T) {
	s := newFBStack(t)
	var pol limits.Policy
	s.call("GET", "/admin/limits/policy", nil, &pol)
	pol.Effects[engine.LabelLegit] = limits.Effect{TrustStep: 0.05}
	if code := s.call("PUT", "/admin/limits/policy", pol, &pol); code != http.StatusOK || pol.Version != 1 {
		t.Fatalf("PUT policy: %d, version %d", code, pol.Version)
	}
	const n = 20
	ids := make([]string, n)
	for i := range ids {
		ids[i] = s.decide(s.pay("acc_busy", "fp_busy", 1_000)).DecisionID
	}
	var wg sync.WaitGroup
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var f fbFeedback
			if code := s.call("POST", "/v1/decisions/"+ids[i%n]+"/feedback", map[string]any{"label": "legit"}, &f); code != http.StatusOK {
				t.Errorf("feedback: %d", code)
			}
		}()
	}
	wg.Wait()
	var ent struct {
		Trust   float64 `json:"trust"`
		History []any   `json:"history"`
	}
	s.call("GET", "/admin/limits/account/acc_busy", nil, &ent)
	if ent.Trust != 2 || len(ent.History) != n {
		t.Errorf("trust %v after %d history events, want 2 after %d", ent.Trust, len(ent.History), n)
	}

	// However many passes, limits stay under the ceiling.
	for range 3 * n {
		d := s.decide(s.pay("acc_busy", "fp_busy", 1_000))
		s.feedback("/v1/decisions/"+d.DecisionID+"/feedback", map[string]any{"label": "challenge_passed"})
	}
	d := s.decide(s.pay("acc_busy", "fp_busy", 1_000))
	if d.Limits.Trust != pol.Trust.Ceiling || d.Limits.SingleMax != 300_000 {
		t.Errorf("after %d passes: trust %v single_max %d, want %v and 300000", 3*n, d.Limits.Trust, d.Limits.SingleMax, pol.Trust.Ceiling)
	}
}

func TestLimitsAdminAPI(t *testing.T) {
	s := newFBStack(t)
	exp := s.clock.now().Add(48 * time.Hour).Format(time.RFC3339)
	var ov map[string]any
	if code := s.call("PUT", "/admin/limits/account/acc_vip", map[string]any{
		"single_max": 500_000, "daily_max": 1_000_000, "reason": "CFO, verified by phone", "expires_at": exp,
	}, &ov); code != http.StatusOK || ov["author"] != "dev" || ov["currency"] != "USD" {
		t.Fatalf("PUT override: %d %v", code, ov)
	}
	d := s.decide(s.pay("acc_vip", "fp_vip", 400_000))
	if d.Decision != "allow" || d.Limits.SingleMax != 500_000 {
		t.Errorf("with override: %s (%s) single_max %d", d.Decision, d.codes(), d.Limits.SingleMax)
	}
	var e apiError
	for _, tt := range []struct {
		method, path string
		body         any
		status       int
		field        string
	}{
		{"PUT", "/admin/limits/card/fp_1", map[string]any{"single_max": 1, "reason": "r", "expires_at": exp}, 400, "entity_type"},
		{"PUT", "/admin/limits/account/acc_vip", map[string]any{"single_max": 1, "reason": "r"}, 400, "expires_at"},
		{"PUT", "/admin/limits/account/acc_vip", map[string]any{"single_max": 1, "expires_at": exp}, 400, "reason"},
		{"PUT", "/admin/limits/account/acc_vip", map[string]any{"single_max": 1, "reason": "r", "expires_at": exp, "extra": 1}, 400, "extra"},
		{"PUT", "/admin/limits/policy", map[string]any{"name": "x"}, 400, "base_currency"},
		{"GET", "/admin/limits/account/acc_vip?currency=ZAR", nil, 400, "currency"},
	} {
		e = apiError{}
		if got := s.call(tt.method, tt.path, tt.body, &e); got != tt.status || e.Field != tt.field {
			t.Errorf("%s %s: %d field %q, want %d %q (%s)", tt.method, tt.path, got, e.Field, tt.status, tt.field, e.Message)
		}
	}
	var ent struct {
		Override *struct {
			Reason string `json:"reason"`
		} `json:"override"`
		History []struct{ Kind string } `json:"history"`
	}
	s.call("GET", "/admin/limits/account/acc_vip", nil, &ent)
	if ent.Override == nil || ent.Override.Reason != "CFO, verified by phone" || len(ent.History) != 1 || ent.History[0].Kind != "override_set" {
		t.Errorf("entity = %+v", ent)
	}
	if code := s.call("DELETE", "/admin/limits/account/acc_vip", nil, nil); code != http.StatusNoContent {
		t.Errorf("DELETE override: %d", code)
	}
	if code := s.call("DELETE", "/admin/limits/account/acc_vip", nil, nil); code != http.StatusNotFound {
		t.Errorf("DELETE again: %d, want 404", code)
	}
	if d := s.decide(s.pay("acc_vip", "fp_vip", 400_000)); d.Decision != "challenge" || d.Limits.SingleMax != 100_000 {
		t.Errorf("override lifted: %s single_max %d", d.Decision, d.Limits.SingleMax)
	}
	var bad struct {
		Code   string `json:"code"`
		Errors []struct {
			Field  string `json:"field"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"errors"`
	}
	pol := limits.DefaultPolicy()
	pol.Segments[0].When = "account.age < 7"
	if code := s.call("PUT", "/admin/limits/policy", pol, &bad); code != http.StatusUnprocessableEntity || len(bad.Errors) != 1 || bad.Errors[0].Column != 9 {
		t.Errorf("bad when: %d %+v", code, bad)
	}
}
