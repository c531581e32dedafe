package admin_test

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/riskengine/risk/rules"
)

type rule struct {
	ID          string `json:"id"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	Expression  string `json:"expression"`
	Action      string `json:"action"`
	Score       int    `json:"score,omitempty"`
	Mode        string `json:"mode,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Message     string `json:"message,omitempty"`
	Version     int    `json:"version,omitempty"`
	UpdatedBy   string `json:"updated_by,omitempty"`
}

func TestValidateMessages(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name string
		body any
		want []rules.Error
	}{
		{
			name: "misspelt field",
			body: map[string]string{"expression": `card.contry == "US"`},
			want: []rules.Error{{Field: "expression", Line: 1, Column: 6, Message: "unknown name `card.contry`; did you mean `card.country`"}},
		},
		{
			name: "misspelt root",
			body: map[string]string{"expression": `cardd.country == "US"`},
			want: []rules.Error{{Field: "expression", Line: 1, Column: 1, Message: "unknown name `cardd`; did you mean `card`"}},
		},
		{
			name: "misspelt feature on line 2",
			body: map[string]string{"expression": "amount > 100 &&\n  features.card_attempt_1h > 3"},
			want: []rules.Error{{Field: "expression", Line: 2, Column: 12, Message: "unknown name `features.card_attempt_1h`; did you mean `features.card_attempts_1h`"}},
		},
		{
			name: "two unknown names",
			body: map[string]string{"expression": `device.ip_contry == "FR" || zzzz > 1`},
			want: []rules.Error{
				{Field: "expression", Line: 1, Column: 8, Message: "unknown name `device.ip_contry`; did you mean `device.ip_country`"},
				{Field: "expression", Line: 1, Column: 29, Message: "unknown name `zzzz`"},
			},
		},
		{
			name: "not boolean",
			body: map[string]string{"expression": `amount + 1`},
			want: []rules.Error{{Field: "expression", Line: 1, Column: 1, Message: "expected bool, but got int"}},
		},
		{
			name: "syntax",
			body: map[string]string{"expression": `amount > 1 &&`},
			want: []rules.Error{{Field: "expression", Line: 1, Column: 13, Message: "unexpected token EOF"}},
		},
		{
			name: "empty",
			body: map[string]string{"expression": ``},
			want: []rules.Error{{Field: "expression", Message: "expression is required"}},
		},
		{
			name: "whole rule",
			body: map[string]any{"id": "velocity", "expression": `features.card_attempts_1h > 3 && card.bin == 4111`, "action": "block"},
			want: []rules.Error{
				{Rule: "velocity", Field: "action", Message: `unknown action "block": use allow, challenge, deny, score or review`},
				{Rule: "velocity", Field: "expression", Line: 1, Column: 43, Message: "invalid operation: == (mismatched types string and int)"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := h.errorsOf(http.MethodPost, "/admin/rules/validate", tt.body)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors =\n%s\nwant\n%s", jsonText(got), jsonText(tt.want))
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		for _, body := range []any{
			map[string]string{"expression": `features.card_attempts_1h >= 5 && in_list("vip_accounts", account.id)`},
			map[string]any{"id": "ok", "expression": `amount > 10`, "action": "score", "score": 5},
		} {
			var got map[string]bool
			h.must(http.StatusOK, http.MethodPost, "/admin/rules/validate", body, &got)
			if !got["valid"] {
				t.Errorf("validate %v = %v", body, got)
			}
		}
	})
	t.Run("message text", func(t *testing.T) {
		var e apiError
		h.must(http.StatusUnprocessableEntity, http.MethodPost, "/admin/rules/validate", map[string]string{"expression": `card.contry == "US"`}, &e)
		if want := "unknown name `card.contry`; did you mean `card.country` (1:6)"; e.Message != want {
			t.Errorf("message = %q, want %q", e.Message, want)
		}
	})
	t.Run("unknown field", func(t *testing.T) {
		var e apiError
		h.must(http.StatusBadRequest, http.MethodPost, "/admin/rules/validate", `{"expresion": "true"}`, &e)
		if e.Field != "expresion" || e.Code != "unknown_field" {
			t.Errorf("error = %+v, want unknown_field on expresion", e)
		}
	})
}

func TestRulesCRUD(t *testing.T) {
	h := newHarness(t)
	var list struct{ Rules []rule }
	h.must(http.StatusOK, http.MethodGet, "/admin/rules", nil, &list)
	if len(list.Rules) != 16 || list.Rules[0].ID != "vip_account" {
		t.Fatalf("draft seeded with %d rules, first %+v; want the 16 sample rules", len(list.Rules), list.Rules[0])
	}

	created := rule{ID: "big_amount", Expression: "amount > 100000", Action: "score", Score: 30}
	var got rule
	h.must(http.StatusCreated, http.MethodPost, "/admin/rules", created, &got)
	want := created
	want.Version, want.Mode, want.UpdatedBy = 1, "active", "dev"
	if got != want {
		t.Errorf("created = %+v, want %+v", got, want)
	}
	h.must(http.StatusConflict, http.MethodPost, "/admin/rules", created, nil)
	h.must(http.StatusOK, http.MethodGet, "/admin/rules/big_amount", nil, &got)
	if got.Version != 1 {
		t.Errorf("version = %d, want 1", got.Version)
	}

	// Every PUT increments the version; a stale version is a conflict.
	got.Score = 35
	h.must(http.StatusOK, http.MethodPut, "/admin/rules/big_amount", got, &got)
	if got.Version != 2 || got.Score != 35 {
		t.Errorf("after PUT: %+v, want version 2 score 35", got)
	}
	stale := got
	stale.Version = 1
	h.must(http.StatusConflict, http.MethodPut, "/admin/rules/big_amount", stale, nil)
	h.must(http.StatusOK, http.MethodPut, "/admin/rules/big_amount", rule{Expression: "amount > 200000", Action: "score", Score: 35}, &got)
	if got.Version != 3 {
		t.Errorf("version = %d, want 3", got.Version)
	}

	// Invalid rules are refused with every error, and nothing is stored.
	errs := h.errorsOf(http.MethodPut, "/admin/rules/big_amount", rule{Expression: "amount >> 1", Action: "score"})
	if len(errs) != 1 || errs[0].Rule != "big_amount" || errs[0].Line != 1 {
		t.Errorf("errors = %+v", errs)
	}
	h.errorsOf(http.MethodPost, "/admin/rules", rule{ID: "9bad", Expression: "true", Action: "deny"})
	h.must(http.StatusBadRequest, http.MethodPut, "/admin/rules/big_amount", rule{ID: "other", Expression: "true", Action: "deny"}, nil)
	h.must(http.StatusNotFound, http.MethodPut, "/admin/rules/nope", rule{Expression: "true", Action: "deny"}, nil)

	h.must(http.StatusNoContent, http.MethodDelete, "/admin/rules/big_amount", nil, nil)
	h.must(http.StatusNotFound, http.MethodGet, "/admin/rules/big_amount", nil, nil)
	h.must(http.StatusNotFound, http.MethodDelete, "/admin/rules/big_amount", nil, nil)

	// Recreated, the rule never reuses a version it had.
	h.must(http.StatusCreated, http.MethodPost, "/admin/rules", created, &got)
	if got.Version != 4 {
		t.Errorf("recreated version = %d, want 4", got.Version)
	}
	// Nothing above is live until published.
	if v := h.liveVersion(); v != 1 {
		t.Errorf("live version = %d, want 1", v)
	}
}
