package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
)

type auditEntry struct {
	ID     int64           `json:"id"`
	At     time.Time       `json:"at"`
	Actor  string          `json:"actor"`
	Action string          `json:"action"`
	Target string          `json:"target"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
}

type auditPage struct {
	Entries    []auditEntry `json:"entries"`
	NextCursor string       `json:"next_cursor"`
}

func (h *harness) audit(query string) auditPage {
	h.tb.Helper()
	var p auditPage
	h.must(http.StatusOK, http.MethodGet, "/admin/audit?"+query, nil, &p)
	return p
}

func actions(p auditPage) []string {
	out := []string{}
	for _, e := range p.Entries {
		out = append(out, e.Action+" "+e.Target)
	}
	return out
}

func TestAuditTrail(t *testing.T) {
	h := newHarness(t)
	start := h.clock.Now().UTC()
	h.must(http.StatusCreated, http.MethodPost, "/admin/rules", rule{ID: "r1", Expression: "amount > 1", Action: "score", Score: 1}, nil)
	h.must(http.StatusOK, http.MethodPut, "/admin/rules/r1", rule{Expression: "amount > 1", Action: "score", Score: 2}, nil)
	h.must(http.StatusOK, http.MethodPut, "/admin/ruleset/draft", map[string]int{"challenge_threshold": 41}, nil)
	h.must(http.StatusCreated, http.MethodPost, "/admin/ruleset/publish", map[string]string{"comment": "c2"}, nil)
	h.must(http.StatusNoContent, http.MethodDelete, "/admin/rules/r1", nil, nil)
	h.must(http.StatusCreated, http.MethodPost, "/admin/ruleset/rollback", map[string]int{"version": 1}, nil)
	_, yaml := h.raw(http.MethodGet, "/admin/ruleset/export", nil)
	h.must(http.StatusOK, http.MethodPost, "/admin/ruleset/import", yaml, nil)
	h.must(http.StatusCreated, http.MethodPut, "/admin/lists/l1", map[string]string{"kind": "string"}, nil)
	h.must(http.StatusCreated, http.MethodPost, "/admin/lists/l1/items", item{Value: "v1"}, nil)
	h.must(http.StatusNoContent, http.MethodDelete, "/admin/lists/l1/items/v1", nil, nil)
	h.must(http.StatusNoContent, http.MethodDelete, "/admin/lists/l1", nil, nil)
	h.must(http.StatusCreated, http.MethodPost, "/admin/features", map[string]any{"name": "f1", "entity": "card.bin", "aggregate": "count", "window": "1h"}, nil)
	h.must(http.StatusNoContent, http.MethodDelete, "/admin/features/f1", nil, nil)
	// Refused changes leave no entry.
	h.must(http.StatusConflict, http.MethodDelete, "/admin/lists/blocked_cards", nil, nil)
	h.errorsOf(http.MethodPost, "/admin/rules", rule{ID: "bad", Expression: "amount >", Action: "deny"})
	// Other admin changes record themselves through the API's Audit.
	ctx := engine.WithPrincipal(context.Background(), engine.Principal{Name: "ops-key", Role: engine.RoleAdmin})
	if _, err := h.api.Audit().Record(ctx, admin.Entry{Action: "limits.update", Target: "limits:acc_1", Before: map[string]int{"daily_max": 1}, After: map[string]int{"daily_max": 2}}); err != nil {
		t.Fatal(err)
	}

	all := h.audit("")
	want := []string{
		"limits.update limits:acc_1", "feature.delete feature:f1", "feature.create feature:f1",
		"list.delete list:l1", "list.item.delete list:l1", "list.items.add list:l1", "list.create list:l1",
		"ruleset.import ruleset:draft", "ruleset.rollback ruleset", "rule.delete rule:r1", "ruleset.publish ruleset",
		"ruleset.draft.update ruleset:draft", "rule.update rule:r1", "rule.create rule:r1",
	}
	if got := actions(all); !reflect.DeepEqual(got, want) {
		t.Fatalf("audit trail =\n%v\nwant\n%v", got, want)
	}
	for i, e := range all.Entries {
		wantActor := "dev"
		if i == 0 {
			wantActor = "ops-key"
		}
		if e.Actor != wantActor || e.At.Before(start) || (i > 0 && e.ID >= all.Entries[i-1].ID) {
			t.Errorf("entry %d = %+v", i, e)
		}
	}
	update := all.Entries[12]
	var before, after rule
	if err := json.Unmarshal(update.Before, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(update.After, &after); err != nil {
		t.Fatal(err)
	}
	if before.Score != 1 || after.Score != 2 || after.Version != 2 {
		t.Errorf("rule.update before %+v after %+v", before, after)
	}
	var published struct {
		Version int64
		Comment string
		Added   []string
	}
	if err := json.Unmarshal(all.Entries[10].After, &published); err != nil {
		t.Fatal(err)
	}
	if published.Version != 2 || published.Comment != "c2" || !reflect.DeepEqual(published.Added, []string{"r1"}) {
		t.Errorf("publish entry after = %s", all.Entries[10].After)
	}
	if all.Entries[13].Before != nil {
		t.Errorf("rule.create has a before: %s", all.Entries[13].Before)
	}

	// Filters.
	if got := actions(h.audit("action=rule")); !reflect.DeepEqual(got, []string{"rule.delete rule:r1", "rule.update rule:r1", "rule.create rule:r1"}) {
		t.Errorf("action=rule: %v", got)
	}
	if got := actions(h.audit("action=list.items.add")); !reflect.DeepEqual(got, []string{"list.items.add list:l1"}) {
		t.Errorf("action=list.items.add: %v", got)
	}
	if got := actions(h.audit("target=feature:f1")); !reflect.DeepEqual(got, []string{"feature.delete feature:f1", "feature.create feature:f1"}) {
		t.Errorf("target=feature:f1: %v", got)
	}
	if got := h.audit("actor=ops-key").Entries; len(got) != 1 {
		t.Errorf("actor=ops-key: %d entries", len(got))
	}
	if got := h.audit("actor=nobody").Entries; len(got) != 0 {
		t.Errorf("actor=nobody: %d entries", len(got))
	}
	bound := all.Entries[11].At // the draft update
	early := h.audit("to=" + url.QueryEscape(bound.Format(time.RFC3339Nano)))
	if n := len(early.Entries); n == 0 || n > 2 || early.Entries[n-1].Action != "rule.create" {
		t.Errorf("to=%s: %v", bound, actions(early))
	}
	for _, e := range early.Entries {
		if !e.At.Before(bound) {
			t.Errorf("to=%s returned %+v", bound, e)
		}
	}
	if got := h.audit("from=" + url.QueryEscape(h.clock.Now().Add(time.Minute).Format(time.RFC3339))).Entries; len(got) != 0 {
		t.Errorf("from the future: %d entries", len(got))
	}

	// Paging.
	var paged []string
	cursor := ""
	for pages := 0; ; pages++ {
		p := h.audit("limit=4&cursor=" + cursor)
		paged = append(paged, actions(p)...)
		if p.NextCursor == "" {
			if pages != 3 {
				t.Errorf("%d pages, want 4", pages+1)
			}
			break
		}
		cursor = p.NextCursor
	}
	if !reflect.DeepEqual(paged, want) {
		t.Errorf("paged =\n%v\nwant\n%v", paged, want)
	}
	for _, q := range []string{"limit=0", "limit=501", "cursor=abc", "from=yesterday", "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"} {
		h.must(http.StatusBadRequest, http.MethodGet, "/admin/audit?"+q, nil, nil)
	}

	// Entries cannot be edited or deleted through the API.
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPost, http.MethodPatch} {
		for _, p := range []string{"/admin/audit", "/admin/audit/" + strconv.FormatInt(all.Entries[0].ID, 10)} {
			if status, _ := h.raw(m, p, "{}"); status != http.StatusMethodNotAllowed && status != http.StatusNotFound {
				t.Errorf("%s %s = %d", m, p, status)
			}
		}
	}
	if got := h.audit("").Entries; len(got) != len(want) {
		t.Errorf("%d entries after the attempts, want %d", len(got), len(want))
	}
}

func TestRoles(t *testing.T) {
	h := newHarness(t, harnessOptions{auth: keys{
		"analyst": {Name: "alice", Role: engine.RoleAnalyst},
		"auditor": {Name: "bob", Role: engine.RoleAuditor},
		"gateway": {Name: "gw", Role: engine.RoleGateway},
		"admin":   {Name: "root", Role: engine.RoleAdmin},
	}})
	tests := []struct {
		token, method, path string
		body                any
		want                int
	}{
		{"", http.MethodGet, "/admin/rules", nil, http.StatusUnauthorized},
		{"gateway", http.MethodGet, "/admin/rules", nil, http.StatusForbidden},
		{"gateway", http.MethodGet, "/admin/audit", nil, http.StatusForbidden},
		{"auditor", http.MethodGet, "/admin/audit", nil, http.StatusOK},
		{"auditor", http.MethodGet, "/admin/rules", nil, http.StatusOK},
		{"auditor", http.MethodGet, "/admin/ruleset/versions/1", nil, http.StatusOK},
		{"auditor", http.MethodGet, "/admin/ruleset/diff?from=1&to=live", nil, http.StatusOK},
		{"auditor", http.MethodGet, "/admin/lists/blocked_cards/items", nil, http.StatusOK},
		{"auditor", http.MethodPost, "/admin/rules", rule{ID: "x", Expression: "true", Action: "deny"}, http.StatusForbidden},
		{"auditor", http.MethodPost, "/admin/ruleset/publish", nil, http.StatusForbidden},
		{"auditor", http.MethodPost, "/admin/lists/blocked_cards/items", item{Value: "x"}, http.StatusForbidden},
		{"auditor", http.MethodDelete, "/admin/features/card_attempts_1h", nil, http.StatusForbidden},
		{"analyst", http.MethodPost, "/admin/rules", rule{ID: "x", Expression: "true", Action: "score"}, http.StatusCreated},
		{"analyst", http.MethodPost, "/admin/lists/blocked_cards/items", item{Value: "x"}, http.StatusCreated},
		{"analyst", http.MethodGet, "/admin/audit", nil, http.StatusOK},
		{"admin", http.MethodPost, "/admin/ruleset/publish", nil, http.StatusCreated},
	}
	for _, tt := range tests {
		h.token = tt.token
		if status, body := h.raw(tt.method, tt.path, tt.body); status != tt.want {
			t.Errorf("%s %s as %q = %d %s, want %d", tt.method, tt.path, tt.token, status, body, tt.want)
		}
	}
	h.token = "auditor"
	got := actions(h.audit(""))
	if want := []string{"ruleset.publish ruleset", "list.items.add list:blocked_cards", "rule.create rule:x"}; !reflect.DeepEqual(got, want) {
		t.Errorf("audit = %v, want %v", got, want)
	}
	if p := h.audit("actor=alice"); len(p.Entries) != 2 {
		t.Errorf("alice made %d changes, want 2", len(p.Entries))
	}
}
