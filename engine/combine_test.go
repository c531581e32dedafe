package engine_test

import (
	"testing"

	"github.com/riskengine/risk/engine"
)

func rr(id string, action engine.Action, score int, matched bool, mode engine.Mode) engine.RuleResult {
	return engine.RuleResult{RuleInfo: &engine.RuleInfo{ID: id, Action: action, Score: score, Mode: mode, Reason: id + "_code"}, Matched: matched}
}

func TestCombine(t *testing.T) {
	const (
		active = engine.ModeActive
		shadow = engine.ModeShadow
	)
	th := engine.Thresholds{Challenge: 40, Deny: 80}
	errored := rr("broken", engine.ActionDeny, 0, true, active)
	errored.Error = "division by zero"
	tests := []struct {
		name      string
		results   []engine.RuleResult
		want      engine.Outcome
		wantScore int
		wantBy    string
		wantRules []string
	}{
		{"nothing matched allows", []engine.RuleResult{rr("a", engine.ActionDeny, 0, false, active)}, engine.Allow, 0, "default", nil},
		{"deny rule denies", []engine.RuleResult{rr("a", engine.ActionDeny, 0, true, active)}, engine.Deny, 0, "rule:a", []string{"a"}},
		{"allow beats deny", []engine.RuleResult{rr("d", engine.ActionDeny, 0, true, active), rr("vip", engine.ActionAllow, 0, true, active)}, engine.Allow, 0, "rule:vip", []string{"vip"}},
		{"deny beats challenge", []engine.RuleResult{rr("c", engine.ActionChallenge, 0, true, active), rr("d", engine.ActionDeny, 0, true, active)}, engine.Deny, 0, "rule:d", []string{"d"}},
		{"challenge rule challenges", []engine.RuleResult{rr("c", engine.ActionChallenge, 0, true, active)}, engine.Challenge, 0, "rule:c", []string{"c"}},
		{"every matching deny is a reason", []engine.RuleResult{rr("d1", engine.ActionDeny, 0, true, active), rr("d2", engine.ActionDeny, 0, true, active)}, engine.Deny, 0, "rule:d1", []string{"d1", "d2"}},
		{"score below challenge allows", []engine.RuleResult{rr("s", engine.ActionScore, 39, true, active)}, engine.Allow, 39, "default", nil},
		{"score at challenge threshold challenges", []engine.RuleResult{rr("s", engine.ActionScore, 40, true, active)}, engine.Challenge, 40, "threshold:challenge", []string{"s"}},
		{"scores add up to deny", []engine.RuleResult{rr("s1", engine.ActionScore, 50, true, active), rr("s2", engine.ActionScore, 30, true, active)}, engine.Deny, 80, "threshold:deny", []string{"s1", "s2"}},
		{"negative score offsets", []engine.RuleResult{rr("s1", engine.ActionScore, 50, true, active), rr("good", engine.ActionScore, -20, true, active)}, engine.Allow, 30, "default", nil},
		{"shadow deny changes nothing", []engine.RuleResult{rr("sh", engine.ActionDeny, 0, true, shadow)}, engine.Allow, 0, "default", nil},
		{"shadow score not counted", []engine.RuleResult{rr("sh", engine.ActionScore, 90, true, shadow)}, engine.Allow, 0, "default", nil},
		{"errored rule does not match", []engine.RuleResult{errored}, engine.Allow, 0, "default", nil},
		{"review alone allows", []engine.RuleResult{rr("rv", engine.ActionReview, 0, true, active)}, engine.Allow, 0, "default", nil},
		{"review leaves a challenge to challenge", []engine.RuleResult{rr("rv", engine.ActionReview, 0, true, active), rr("c", engine.ActionChallenge, 0, true, active)}, engine.Challenge, 0, "rule:c", []string{"c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, score, reasons, by := engine.Combine(tt.results, th)
			if got != tt.want || score != tt.wantScore || by != tt.wantBy {
				t.Errorf("Combine = %s, %d, %q; want %s, %d, %q", got, score, by, tt.want, tt.wantScore, tt.wantBy)
			}
			var ids []string
			for _, r := range reasons {
				ids = append(ids, r.Rule)
				if r.Code != r.Rule+"_code" {
					t.Errorf("reason %s code = %q, want %q", r.Rule, r.Code, r.Rule+"_code")
				}
			}
			if len(ids) != len(tt.wantRules) {
				t.Fatalf("reasons = %v, want %v", ids, tt.wantRules)
			}
			for i := range ids {
				if ids[i] != tt.wantRules[i] {
					t.Errorf("reasons = %v, want %v", ids, tt.wantRules)
				}
			}
		})
	}
}

func TestCombineZeroThresholdsDisabled(t *testing.T) {
	got, _, _, _ := engine.Combine([]engine.RuleResult{rr("s", engine.ActionScore, 500, true, engine.ModeActive)}, engine.Thresholds{})
	if got != engine.Allow {
		t.Errorf("with zero thresholds got %s, want allow", got)
	}
}

func TestReviewRequested(t *testing.T) {
	errored := rr("rv", engine.ActionReview, 0, true, engine.ModeActive)
	errored.Error = "boom"
	tests := []struct {
		name    string
		results []engine.RuleResult
		want    bool
	}{
		{"matched active review rule", []engine.RuleResult{rr("d", engine.ActionDeny, 0, true, engine.ModeActive), rr("rv", engine.ActionReview, 0, true, engine.ModeActive)}, true},
		{"unmatched review rule", []engine.RuleResult{rr("rv", engine.ActionReview, 0, false, engine.ModeActive)}, false},
		{"shadow review rule", []engine.RuleResult{rr("rv", engine.ActionReview, 0, true, engine.ModeShadow)}, false},
		{"errored review rule", []engine.RuleResult{errored}, false},
		{"no review rule", []engine.RuleResult{rr("d", engine.ActionDeny, 0, true, engine.ModeActive)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := engine.Record{Rules: tt.results}
			if got := rec.ReviewRequested(); got != tt.want {
				t.Errorf("ReviewRequested = %v, want %v", got, tt.want)
			}
		})
	}
}
