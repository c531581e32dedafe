package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
)

func TestOutcomePaths(t *testing.T) {
	s := newStack(t, t.TempDir(), nil)
	if _, err := s.lists.AddItems("blocked_cards", []features.Item{{Value: "fp_stolen"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.lists.AddItems("vip_accounts", []features.Item{{Value: "acc_vip"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.lists.AddItems("paused_countries", []features.Item{{Value: "KP"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		body      map[string]any
		want      string
		wantRules []string
	}{
		{"honest payment allowed", payment("t_ok"), "allow", nil},
		{"blocked card denied", set(payment("t_blocked"), "card.fingerprint", "fp_stolen"), "deny", []string{"blocked_card"}},
		{"vip allowed even on a blocked card", set(set(payment("t_vip"), "card.fingerprint", "fp_stolen"), "account.id", "acc_vip"), "allow", []string{"vip_account"}},
		{"paused country denied", set(payment("t_paused"), "device.ip_country", "KP"), "deny", []string{"paused_bin_or_country"}},
		{"blocked ip range denied", set(payment("t_ip"), "device.ip", "198.51.100.77"), "deny", []string{"blocked_ip"}},
		{"foreign card challenged", set(payment("t_abroad"), "device.ip_country", "FR"), "challenge", []string{"card_country_mismatch"}},
		{"new account large amount scores below challenge", set(set(set(payment("t_new"), "card.fingerprint", "fp_new"), "account.created_at", time.Now().UTC().Add(-24*time.Hour).Format(time.RFC3339)), "amount", 60000), "allow", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d decision
			if code := s.do("POST", "/v1/decisions", tt.body, &d); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			if d.Decision != tt.want {
				t.Errorf("decision = %s, want %s (reasons %+v)", d.Decision, tt.want, d.Reasons)
			}
			var got []string
			for _, r := range d.Reasons {
				got = append(got, r.Rule)
				if r.Message == "" || r.Code == "" {
					t.Errorf("reason %s lacks code or message", r.Rule)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.wantRules, ",") {
				t.Errorf("reasons = %v, want %v", got, tt.wantRules)
			}
			if d.DecisionID == "" || d.RulesetVersion != 1 || d.EvaluatedAt.IsZero() || d.Degraded {
				t.Errorf("incomplete response %+v", d)
			}
		})
	}
}

func TestBurstIsChallenged(t *testing.T) {
	s := newStack(t, t.TempDir(), nil)
	var outcomes []string
	for i := 0; i < 6; i++ {
		body := set(set(payment(fmt.Sprintf("burst_%d", i)), "card.fingerprint", "fp_burst"), "amount", 100)
		var d decision
		s.do("POST", "/v1/decisions", body, &d)
		outcomes = append(outcomes, d.Decision)
	}
	// card_testing_burst challenges from the fifth attempt (four before it).
	want := "allow,allow,allow,allow,challenge,challenge"
	if got := strings.Join(outcomes, ","); got != want {
		t.Errorf("outcomes = %s, want %s", got, want)
	}
}

func TestScoreThresholdsAndShadow(t *testing.T) {
	spec := rules.Spec{ChallengeThreshold: 30, DenyThreshold: 60, Rules: []rules.Rule{
		{ID: "big", Expression: "amount > 1000", Action: engine.ActionScore, Score: 30, Reason: "big", Message: "m"},
		{ID: "huge", Expression: "amount > 5000", Action: engine.ActionScore, Score: 30, Reason: "huge", Message: "m"},
		{ID: "shadow_deny", Expression: "amount > 0", Action: engine.ActionDeny, Mode: engine.ModeShadow},
		{ID: "broken", Expression: `attributes.missing.x == 1`, Action: engine.ActionDeny},
	}}
	s := newStack(t, t.TempDir(), &spec)
	tests := []struct {
		amount int
		want   string
		score  int
	}{{500, "allow", 0}, {2000, "challenge", 30}, {9000, "deny", 60}}
	for _, tt := range tests {
		var d decision
		s.do("POST", "/v1/decisions", set(payment(fmt.Sprintf("score_%d", tt.amount)), "amount", tt.amount), &d)
		if d.Decision != tt.want || d.Score != tt.score {
			t.Errorf("amount %d: %s score %d, want %s score %d", tt.amount, d.Decision, d.Score, tt.want, tt.score)
		}
		var ex explanation
		s.do("GET", "/v1/decisions/"+d.DecisionID, nil, &ex)
		rs := map[string]ruleResult{}
		for _, r := range ex.Rules {
			rs[r.ID] = r
		}
		if r := rs["shadow_deny"]; !r.Matched || r.Mode != "shadow" {
			t.Errorf("shadow rule result = %+v, want matched in shadow mode", r)
		}
		if r := rs["broken"]; r.Matched || r.Error == "" {
			t.Errorf("broken rule result = %+v, want an error and no match", r)
		}
	}
}

type ruleResult struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
	Mode    string `json:"mode"`
	Action  string `json:"action"`
	Matched bool   `json:"matched"`
	Error   string `json:"error"`
}

type explanation struct {
	decision
	Request map[string]any `json:"request"`
	Payment struct {
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
	} `json:"payment"`
	Features []struct {
		Name  string  `json:"name"`
		Value float64 `json:"value"`
		Ready bool    `json:"ready"`
	} `json:"features"`
	Rules      []ruleResult   `json:"rules"`
	Thresholds map[string]int `json:"thresholds"`
	By         string         `json:"determined_by"`
	Labels     []any          `json:"labels"`
}

func TestExplanation(t *testing.T) {
	s := newStack(t, t.TempDir(), nil)
	for i := 0; i < 2; i++ {
		s.do("POST", "/v1/decisions", set(payment(fmt.Sprintf("pre_%d", i)), "device.ip_country", "FR"), nil)
	}
	var d decision
	s.do("POST", "/v1/decisions", set(payment("explain_me"), "device.ip_country", "FR"), &d)
	var ex explanation
	if code := s.do("GET", "/v1/decisions/"+d.DecisionID, nil, &ex); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if ex.Request["transaction_id"] != "explain_me" || ex.Payment.Amount != 12999 || ex.Payment.Currency != "USD" {
		t.Errorf("request/payment not kept: %v / %+v", ex.Request, ex.Payment)
	}
	feats := map[string]float64{}
	for _, f := range ex.Features {
		feats[f.Name] = f.Value
		if !f.Ready {
			t.Errorf("feature %s not ready", f.Name)
		}
	}
	if len(ex.Features) != 12 || feats["card_attempts_1h"] != 2 || feats["device_attempts_24h"] != 2 {
		t.Errorf("features = %v, want 12 with 2 prior attempts", feats)
	}
	if len(ex.Rules) != 16 {
		t.Errorf("rules evaluated = %d, want 16", len(ex.Rules))
	}
	if ex.By != "rule:card_country_mismatch" || ex.Thresholds["challenge"] != 40 || ex.Thresholds["deny"] != 80 {
		t.Errorf("determined_by %q thresholds %v", ex.By, ex.Thresholds)
	}
	if ex.Labels == nil {
		t.Error("labels missing (want an empty list)")
	}
	if code := s.do("GET", "/v1/decisions/dec_unknown", nil, nil); code != http.StatusNotFound {
		t.Errorf("unknown decision status %d, want 404", code)
	}
}

func TestIdempotency(t *testing.T) {
	s := newStack(t, t.TempDir(), nil)
	body := set(payment("idem_1"), "card.fingerprint", "fp_idem")
	var first decision
	s.do("POST", "/v1/decisions", body, &first)
	var again decision
	if code := s.do("POST", "/v1/decisions", body, &again); code != http.StatusOK {
		t.Fatalf("retry status %d", code)
	}
	if again.DecisionID != first.DecisionID || !again.Replayed {
		t.Errorf("retry = %+v, want the stored decision %s replayed", again, first.DecisionID)
	}
	var e apiError
	if code := s.do("POST", "/v1/decisions", set(body, "amount", 1), &e); code != http.StatusConflict || e.Code != "conflict" {
		t.Errorf("different body: %d %+v, want 409 conflict", code, e)
	}

	// 100 concurrent retries of one new transaction: one decision, one count.
	body = set(set(payment("idem_burst"), "card.fingerprint", "fp_concurrent"), "occurred_at", time.Now().UTC().Format(time.RFC3339Nano))
	var wg sync.WaitGroup
	ids := make([]string, 100)
	codes := make([]int, 100)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d decision
			codes[i] = s.do("POST", "/v1/decisions", body, &d)
			ids[i] = d.DecisionID
		}()
	}
	wg.Wait()
	for i := range ids {
		if codes[i] != http.StatusOK || ids[i] != ids[0] {
			t.Fatalf("request %d: %d %s, want 200 %s", i, codes[i], ids[i], ids[0])
		}
	}
	var ex explanation
	s.do("POST", "/v1/decisions", set(set(payment("idem_probe"), "card.fingerprint", "fp_concurrent"), "occurred_at", time.Now().UTC().Format(time.RFC3339Nano)), &ex.decision)
	s.do("GET", "/v1/decisions/"+ex.DecisionID, nil, &ex)
	for _, f := range ex.Features {
		if f.Name == "card_attempts_1h" && f.Value != 1 {
			t.Errorf("card_attempts_1h after 100 retries = %v, want 1", f.Value)
		}
	}
	var page struct {
		Decisions []decision `json:"decisions"`
	}
	s.do("GET", "/v1/decisions?card_fingerprint=fp_concurrent", nil, &page)
	if len(page.Decisions) != 2 {
		t.Errorf("stored decisions for the card = %d, want 2 (the burst and the probe)", len(page.Decisions))
	}
}

func TestBadInput(t *testing.T) {
	s := newStack(t, t.TempDir(), nil)
	big := `{"transaction_id":"x","amount":1,"currency":"USD","attributes":{"pad":"` + strings.Repeat("a", 70<<10) + `"}}`
	tests := []struct {
		name  string
		body  any
		field string
		code  string
	}{
		{"not json", "{nope", "", "invalid_json"},
		{"empty body", "", "", "invalid_json"},
		{"array body", "[1,2]", "", "invalid_json"},
		{"two objects", `{"transaction_id":"a","amount":1,"currency":"USD"} {}`, "", "invalid_json"},
		{"too large", big, "", "body_too_large"},
		{"missing transaction id", set(payment(""), "transaction_id", nil), "transaction_id", "required"},
		{"missing amount", set(payment("b1"), "amount", nil), "amount", "required"},
		{"negative amount", set(payment("b2"), "amount", -100), "amount", "invalid_amount"},
		{"zero amount", set(payment("b2z"), "amount", 0), "amount", "invalid_amount"},
		{"fractional amount", set(payment("b3"), "amount", 12.5), "amount", "invalid_amount"},
		{"string amount", set(payment("b4"), "amount", "100"), "amount", "invalid_type"},
		{"missing currency", set(payment("b5"), "currency", nil), "currency", "required"},
		{"unknown currency", set(payment("b6"), "currency", "ABC"), "currency", "invalid_currency"},
		{"malformed time", set(payment("b7"), "occurred_at", "yesterday"), "occurred_at", "invalid_time"},
		{"far future", set(payment("b8"), "occurred_at", time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339)), "occurred_at", "in_future"},
		{"malformed created_at", set(payment("b9"), "account.created_at", "2026-13-01"), "account.created_at", "invalid_time"},
		{"wrong type nested", set(payment("b10"), "card.country", 42), "card.country", "invalid_type"},
		{"wrong type object", set(payment("b11"), "device", "phone"), "device", "invalid_type"},
		{"unknown field", set(payment("b12"), "ammount", 5), "ammount", "unknown_field"},
		{"nested attribute", set(payment("b13"), "attributes.deep", map[string]any{"x": 1}), "attributes.deep", "invalid_type"},
		{"card number", set(payment("b14"), "attributes.note", "4111 1111 1111 1111"), "attributes.note", "card_number_refused"},
		{"long transaction id", set(payment(strings.Repeat("t", 129)), "x", nil), "transaction_id", "too_long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e apiError
			code := s.do("POST", "/v1/decisions", tt.body, &e)
			if code != http.StatusBadRequest || e.Code != tt.code || e.Field != tt.field {
				t.Errorf("got %d %+v, want 400 code %q field %q", code, e, tt.code, tt.field)
			}
			if e.Message == "" || e.RequestID == "" {
				t.Errorf("error lacks message or request id: %+v", e)
			}
		})
	}
	var page struct {
		Decisions []decision `json:"decisions"`
	}
	s.do("GET", "/v1/decisions", nil, &page)
	if len(page.Decisions) != 0 {
		t.Errorf("rejected requests stored %d decisions", len(page.Decisions))
	}
}

func TestSearchQueries(t *testing.T) {
	s := newStack(t, t.TempDir(), nil)
	for i := 0; i < 5; i++ {
		body := set(set(payment(fmt.Sprintf("s_%d", i)), "account.id", fmt.Sprintf("acc_s%d", i%2)), "device.ip_country", map[bool]string{true: "FR", false: "US"}[i%2 == 0])
		s.do("POST", "/v1/decisions", body, nil)
	}
	var page struct {
		Decisions  []decision `json:"decisions"`
		NextCursor string     `json:"next_cursor"`
	}
	s.do("GET", "/v1/decisions?account_id=acc_s0&limit=2", nil, &page)
	if len(page.Decisions) != 2 || page.Decisions[0].TransactionID != "s_4" || page.NextCursor == "" {
		t.Fatalf("first page = %+v", page)
	}
	cursor := page.NextCursor
	page.NextCursor = ""
	s.do("GET", "/v1/decisions?account_id=acc_s0&limit=2&cursor="+cursor, nil, &page)
	if len(page.Decisions) != 1 || page.Decisions[0].TransactionID != "s_0" {
		t.Errorf("second page = %+v", page)
	}
	s.do("GET", "/v1/decisions?decision=challenge", nil, &page)
	if len(page.Decisions) != 3 {
		t.Errorf("challenges = %d, want 3", len(page.Decisions))
	}
	s.do("GET", "/v1/decisions?transaction_id=s_3", nil, &page)
	if len(page.Decisions) != 1 || page.Decisions[0].TransactionID != "s_3" {
		t.Errorf("by transaction = %+v", page)
	}
	for _, q := range []string{"decision=maybe", "from=yesterday", "limit=0", "from=2026-11-22T10:00:00Z&to=2026-11-22T09:00:00Z", "account_id=acc_s0&cursor=garbage", "cursor=AAAA", "cursor=!!!"} {
		var e apiError
		if code := s.do("GET", "/v1/decisions?"+q, nil, &e); code != http.StatusBadRequest || e.Field == "" {
			t.Errorf("%s: %d %+v, want 400 with a field", q, code, e)
		}
	}
}

func TestRestartKeepsDecisions(t *testing.T) {
	dir := t.TempDir()
	s := newStack(t, dir, nil)
	var ids []string
	first := payment("r_0")
	for i := 0; i < 20; i++ {
		var d decision
		body := first
		if i > 0 {
			body = payment(fmt.Sprintf("r_%d", i))
		}
		s.do("POST", "/v1/decisions", body, &d)
		ids = append(ids, d.DecisionID)
	}
	s.close()
	s2 := newStack(t, dir, nil)
	for i, id := range ids {
		var ex explanation
		if code := s2.do("GET", "/v1/decisions/"+id, nil, &ex); code != http.StatusOK || ex.TransactionID != fmt.Sprintf("r_%d", i) {
			t.Fatalf("decision %s after restart: %d %+v", id, code, ex.decision)
		}
	}
	// A retry after the restart is still recognised.
	var d decision
	s2.do("POST", "/v1/decisions", first, &d)
	if d.DecisionID != ids[0] {
		t.Errorf("retry after restart got %s, want %s", d.DecisionID, ids[0])
	}
}
