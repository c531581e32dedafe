package admin_test

import (
	"net/http"
	"testing"
)

type dryRunResult struct {
	Source     string `json:"source"`
	DecisionID string `json:"decision_id"`
	Against    string `json:"against"`
	Decision   string `json:"decision"`
	Rules      []struct {
		ID      string `json:"id"`
		Matched bool   `json:"matched"`
		Error   string `json:"error"`
	} `json:"rules"`
	Recorded *struct {
		Decision string `json:"decision"`
	} `json:"recorded"`
	Features map[string]float64 `json:"features"`
}

// TestDryRun runs a rule and the draft against a past decision and a pasted
// payment: it answers what they would return and stores nothing (no
// decision, no audit entry).
func TestDryRun(t *testing.T) {
	h := newHarness(t)
	var d struct {
		ID       string `json:"decision_id"`
		Decision string `json:"decision"`
	}
	h.must(http.StatusOK, http.MethodPost, "/v1/decisions", payment(), &d)
	if d.Decision != "allow" {
		t.Fatalf("sample payment = %s, want allow", d.Decision)
	}
	auditBefore := len(h.audit("").Entries)
	var before struct {
		Decisions []any `json:"decisions"`
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/decisions?limit=100", nil, &before)

	rule := map[string]any{"id": "big", "expression": "amount > 10000", "action": "deny", "reason": "big"}
	t.Run("rule against a past decision", func(t *testing.T) {
		var got dryRunResult
		h.must(http.StatusOK, http.MethodPost, "/admin/rules/dry-run", map[string]any{"decision_id": d.ID, "rule": rule}, &got)
		if got.Decision != "deny" || got.Against != "rule" || got.Source != "decision" || got.DecisionID != d.ID {
			t.Errorf("got %s", jsonText(got))
		}
		if len(got.Rules) != 1 || !got.Rules[0].Matched || got.Recorded == nil || got.Recorded.Decision != "allow" {
			t.Errorf("rules/recorded: %s", jsonText(got))
		}
	})
	t.Run("draft against a pasted payment", func(t *testing.T) {
		var got dryRunResult
		h.must(http.StatusOK, http.MethodPost, "/admin/rules/dry-run", map[string]any{"payment": payment()}, &got)
		if got.Decision != "allow" || got.Against != "draft" || got.Source != "payment" || len(got.Rules) < 2 || got.Recorded != nil {
			t.Errorf("got %s", jsonText(got))
		}
		if len(got.Features) == 0 {
			t.Errorf("no feature values: %s", jsonText(got))
		}
	})
	t.Run("refused", func(t *testing.T) {
		h.must(http.StatusBadRequest, http.MethodPost, "/admin/rules/dry-run", map[string]any{"rule": rule}, nil)
		h.must(http.StatusBadRequest, http.MethodPost, "/admin/rules/dry-run", map[string]any{"decision_id": d.ID, "payment": payment()}, nil)
		h.must(http.StatusNotFound, http.MethodPost, "/admin/rules/dry-run", map[string]any{"decision_id": "dec_nope"}, nil)
		errs := h.errorsOf(http.MethodPost, "/admin/rules/dry-run", map[string]any{"decision_id": d.ID,
			"rule": map[string]any{"id": "x", "expression": "card.contry == 'US'", "action": "deny"}})
		if len(errs) != 1 || errs[0].Line != 1 || errs[0].Column != 6 {
			t.Errorf("errors = %s", jsonText(errs))
		}
		h.must(http.StatusBadRequest, http.MethodPost, "/admin/rules/dry-run", map[string]any{"payment": map[string]any{"amount": 1}}, nil)
	})
	var after struct {
		Decisions []any `json:"decisions"`
	}
	h.must(http.StatusOK, http.MethodGet, "/v1/decisions?limit=100", nil, &after)
	if len(after.Decisions) != len(before.Decisions) {
		t.Errorf("decisions %d -> %d: a dry run stored one", len(before.Decisions), len(after.Decisions))
	}
	if n := len(h.audit("").Entries); n != auditBefore {
		t.Errorf("audit entries %d -> %d: a dry run was audited", auditBefore, n)
	}
}
