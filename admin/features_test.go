package admin_test

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

type featureInfo struct {
	Name      string `json:"name"`
	Entity    any    `json:"entity"`
	Aggregate string `json:"aggregate"`
	Window    string `json:"window"`
	Backfill  *struct {
		Processed uint64 `json:"processed"`
		Total     uint64 `json:"total"`
		Done      bool   `json:"done"`
	} `json:"backfill"`
	UsedBy []string `json:"used_by"`
}

func TestFeaturesAPI(t *testing.T) {
	h := newHarness(t)
	var list struct{ Features []featureInfo }
	h.must(http.StatusOK, http.MethodGet, "/admin/features", nil, &list)
	if len(list.Features) != 12 {
		t.Fatalf("%d features, want the 12 sample ones", len(list.Features))
	}
	var f featureInfo
	h.must(http.StatusOK, http.MethodGet, "/admin/features/card_declines_24h", nil, &f)
	if f.Aggregate != "count" || !reflect.DeepEqual(f.UsedBy, []string{"repeated_declines"}) {
		t.Errorf("card_declines_24h = %+v", f)
	}
	h.must(http.StatusNotFound, http.MethodGet, "/admin/features/nope", nil, nil)

	for _, tt := range []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"duplicate", map[string]any{"name": "card_attempts_1h", "entity": "card.fingerprint", "aggregate": "count", "window": "1h"}, http.StatusConflict, ""},
		{"bad name", map[string]any{"name": "Card", "entity": "card.fingerprint", "aggregate": "count", "window": "1h"}, http.StatusBadRequest, "name"},
		{"bad window", map[string]any{"name": "x", "entity": "card.fingerprint", "aggregate": "count", "window": "1y"}, http.StatusBadRequest, "window"},
		{"bad entity", map[string]any{"name": "x", "entity": "card.number", "aggregate": "count", "window": "1h"}, http.StatusBadRequest, "entity"},
		{"bad aggregate", map[string]any{"name": "x", "entity": "card.fingerprint", "aggregate": "median", "window": "1h"}, http.StatusBadRequest, "aggregate"},
		{"sum without field", map[string]any{"name": "x", "entity": "card.fingerprint", "aggregate": "sum", "window": "1h"}, http.StatusBadRequest, "field"},
		{"unknown field", map[string]any{"name": "x", "entity": "card.fingerprint", "aggregate": "count", "window": "1h", "windw": "1h"}, http.StatusBadRequest, "windw"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var e apiError
			h.must(tt.status, http.MethodPost, "/admin/features", tt.body, &e)
			if e.Field != tt.field {
				t.Errorf("field = %q, want %q (%+v)", e.Field, tt.field, e)
			}
		})
	}
	errs := h.errorsOf(http.MethodPost, "/admin/features", map[string]any{
		"name": "x", "entity": "card.fingerprint", "aggregate": "count", "window": "1h", "where": `decison == "deny"`,
	})
	if len(errs) != 1 || errs[0].Field != "where" || errs[0].Message != "unknown name `decison`; did you mean `decision`" || errs[0].Column != 1 {
		t.Errorf("where errors = %+v", errs)
	}

	// Deleting a feature a live rule reads is refused, naming the rule.
	var e apiError
	h.must(http.StatusConflict, http.MethodDelete, "/admin/features/card_declines_24h", nil, &e)
	if want := `feature "card_declines_24h" is used by live rule "repeated_declines": conflict`; e.Message != want {
		t.Errorf("message = %q, want %q", e.Message, want)
	}
	h.must(http.StatusConflict, http.MethodDelete, "/admin/features/device_attempts_24h", nil, &e)
	if want := `feature "device_attempts_24h" is used by live rule "new_email_new_device": conflict`; e.Message != want {
		t.Errorf("message = %q, want %q", e.Message, want)
	}

	// PUT replaces a definition; the name is the path's.
	h.must(http.StatusOK, http.MethodPut, "/admin/features/ip_attempts_1h", map[string]any{"entity": "device.ip", "aggregate": "count", "window": "2h"}, &f)
	if f.Name != "ip_attempts_1h" || f.Window != "2h" {
		t.Errorf("updated %+v", f)
	}
	h.must(http.StatusBadRequest, http.MethodPut, "/admin/features/ip_attempts_1h", map[string]any{"name": "other", "entity": "device.ip", "aggregate": "count", "window": "2h"}, nil)
	h.must(http.StatusNotFound, http.MethodPut, "/admin/features/nope", map[string]any{"entity": "device.ip", "aggregate": "count", "window": "2h"}, nil)
	h.must(http.StatusNoContent, http.MethodDelete, "/admin/features/ip_attempts_1h", nil, nil)
	h.must(http.StatusNotFound, http.MethodGet, "/admin/features/ip_attempts_1h", nil, nil)
	h.must(http.StatusNotFound, http.MethodDelete, "/admin/features/ip_attempts_1h", nil, nil)
}

// TestNewFeatureEndToEnd defines a feature over the API, waits for its
// backfill from the decisions already made, and publishes a rule on it.
func TestNewFeatureEndToEnd(t *testing.T) {
	h := newHarness(t)
	for range 3 {
		h.decide(with(payment(), "merchant.id", "m_busy"))
	}
	var f featureInfo
	h.must(http.StatusCreated, http.MethodPost, "/admin/features", map[string]any{
		"name": "merchant_attempts_1h", "entity": "merchant.id", "aggregate": "count", "window": "1h",
	}, &f)
	if f.Backfill == nil {
		t.Fatalf("no backfill status: %+v", f)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !f.Backfill.Done {
		if time.Now().After(deadline) {
			t.Fatalf("backfill not done: %+v", f.Backfill)
		}
		time.Sleep(10 * time.Millisecond)
		h.must(http.StatusOK, http.MethodGet, "/admin/features/merchant_attempts_1h", nil, &f)
	}
	if f.Backfill.Total != 3 || f.Backfill.Processed != 3 {
		t.Errorf("backfill = %+v, want 3 of 3", f.Backfill)
	}
	h.must(http.StatusCreated, http.MethodPost, "/admin/rules", rule{ID: "busy_merchant", Expression: "features.merchant_attempts_1h >= 3", Action: "deny", Reason: "busy"}, nil)
	h.must(http.StatusCreated, http.MethodPost, "/admin/ruleset/publish", map[string]string{"comment": "busy merchants"}, nil)
	if d := h.decide(with(payment(), "merchant.id", "m_busy")); d.Decision != "deny" || d.Reasons[0].Code != "busy" {
		t.Errorf("decision = %+v, want deny busy", d)
	}
	if d := h.decide(with(payment(), "card.fingerprint", "fp_fresh")); d.Decision != "allow" {
		t.Errorf("other merchant = %+v, want allow", d)
	}
	h.must(http.StatusConflict, http.MethodDelete, "/admin/features/merchant_attempts_1h", nil, nil)
}
