package review_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/admin/review"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

// TestCaseCloseAsFraud: a case closed as fraud with a block adds its card
// to the block list with the expiry, labels its decisions fraud, and is
// audited as one action; the card is denied on the next payment.
func TestCaseCloseAsFraud(t *testing.T) {
	s := newStack(t)
	d1 := s.decide(s.pay("acc_ct", "fp_ct", 100, "USD"))
	d2 := s.decide(s.pay("acc_ct", "fp_ct", 200, "USD"))
	var c review.Case
	s.must(http.StatusCreated, "ana", "POST", "/admin/cases", map[string]any{
		"title": "Card testing on fp_ct", "tags": []string{"card_testing"},
		"entities":  []map[string]string{{"type": "card", "value": "fp_ct"}},
		"decisions": []string{d1.DecisionID},
	}, &c)
	if c.Status != review.CaseOpen || c.CreatedBy != "ana" || !slices.Equal(c.Decisions, []string{d1.DecisionID}) || !slices.Equal(c.Outcomes, []engine.Outcome{engine.Allow}) {
		t.Fatalf("created = %+v", c)
	}
	s.must(http.StatusOK, "bob", "POST", "/admin/cases/"+c.ID+"/decisions", map[string]any{"decision_ids": []string{d2.DecisionID, d1.DecisionID}}, &c)
	if len(c.Decisions) != 2 {
		t.Fatalf("decisions = %v, want both once", c.Decisions)
	}
	s.must(http.StatusBadRequest, "bob", "POST", "/admin/cases/"+c.ID+"/decisions", map[string]any{"decision_ids": []string{"dec_nope"}}, nil)
	s.must(http.StatusCreated, "bob", "POST", "/admin/cases/"+c.ID+"/notes", map[string]any{"text": "two tiny payments a second apart"}, &c)
	if len(c.Notes) != 1 || c.Notes[0].Author != "bob" || c.Notes[0].At.IsZero() {
		t.Fatalf("notes = %+v", c.Notes)
	}

	expires := s.clock.now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	s.must(http.StatusBadRequest, "ana", "PATCH", "/admin/cases/"+c.ID, map[string]any{"status": "closed", "resolution": "fraud", "block": map[string]any{"lists": []string{"no_such_list"}}}, nil)
	s.must(http.StatusBadRequest, "ana", "PATCH", "/admin/cases/"+c.ID, map[string]any{"status": "closed", "resolution": "legit", "block": map[string]any{"lists": []string{"blocked_cards"}}}, nil)
	var res struct {
		review.Case
		LabelledFraud []string              `json:"labelled_fraud"`
		BlockedNow    []review.BlockedEntry `json:"blocked_now"`
	}
	s.must(http.StatusOK, "ana", "PATCH", "/admin/cases/"+c.ID, map[string]any{
		"status": "closed", "resolution": "fraud", "block": map[string]any{"lists": []string{"blocked_cards"}, "expires_at": expires.Format(time.RFC3339)},
	}, &res)
	if res.Status != review.CaseClosed || res.Resolution != "fraud" || res.ClosedBy != "ana" || len(res.LabelledFraud) != 2 ||
		len(res.BlockedNow) != 1 || res.BlockedNow[0].Value != "fp_ct" || !res.BlockedNow[0].ExpiresAt.Equal(expires) {
		t.Fatalf("closed = %+v", res)
	}
	items, _, err := s.lists.Items("blocked_cards", "", 10)
	if err != nil || !slices.ContainsFunc(items, func(it features.Item) bool { return it.Value == "fp_ct" && it.ExpiresAt.Equal(expires) }) {
		t.Fatalf("blocked_cards = %+v, %v", items, err)
	}
	for _, id := range []string{d1.DecisionID, d2.DecisionID} {
		rec, err := s.store.Get(context.Background(), id)
		if err != nil || !rec.HasLabel("fraud") {
			t.Errorf("decision %s labelled fraud: %v", id, err)
		}
	}
	entries, _, err := s.audit.Query(context.Background(), admin.AuditQuery{Action: "case.close"})
	if err != nil || len(entries) != 1 || entries[0].Target != "case:"+c.ID {
		t.Fatalf("audit = %+v, %v", entries, err)
	}
	if next := s.decide(s.pay("acc_other", "fp_ct", 100, "USD")); next.Decision != "deny" || !strings.Contains(next.codes(), "card_blocked") {
		t.Errorf("next payment on the card: %s (%s), want deny card_blocked", next.Decision, next.codes())
	}
	s.must(http.StatusConflict, "ana", "PATCH", "/admin/cases/"+c.ID, map[string]any{"status": "closed", "resolution": "legit"}, nil)
}

// TestLibrarySearchAndExport: closed cases are found by tag, text, rule,
// entity and outcome; the export is every matching case, one per line,
// equal to what GET returns.
func TestLibrarySearchAndExport(t *testing.T) {
	s := newStack(t)
	d := s.decide(s.pay("acc_l", "fp_l", 60_000, "USD"))
	mk := func(title string, tags []string, note string, closeAs string, decisions ...string) review.Case {
		var c review.Case
		s.must(http.StatusCreated, "ana", "POST", "/admin/cases", map[string]any{
			"title": title, "tags": tags, "decisions": decisions,
			"entities": []map[string]string{{"type": "account", "value": "acc_" + strings.ReplaceAll(title, " ", "_")}},
		}, &c)
		if note != "" {
			s.must(http.StatusCreated, "ana", "POST", "/admin/cases/"+c.ID+"/notes", map[string]any{"text": note}, nil)
		}
		if closeAs != "" {
			s.must(http.StatusOK, "ana", "PATCH", "/admin/cases/"+c.ID, map[string]any{"status": "closed", "resolution": closeAs}, &c)
		}
		s.clock.add(time.Second)
		return c
	}
	a := mk("Testing burst", []string{"card_testing"}, "BIN attack from a botnet", "fraud", d.DecisionID)
	b := mk("Friendly fraud", []string{"chargeback"}, "customer forgot the purchase", "legit")
	c := mk("Another burst", []string{"card_testing"}, "", "unsure")
	open := mk("Still looking", []string{"card_testing"}, "botnet again?", "")

	search := func(query string) []string {
		t.Helper()
		var out struct {
			Cases []review.Case `json:"cases"`
		}
		s.must(http.StatusOK, "aud", "GET", "/admin/cases?"+query, nil, &out)
		var ids []string
		for _, c := range out.Cases {
			ids = append(ids, c.ID)
		}
		return ids
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"status=closed&tag=card_testing", []string{c.ID, a.ID}},
		{"status=closed&q=BOTNET", []string{a.ID}},
		{"q=botnet", []string{open.ID, a.ID}},
		{"status=closed&rule=big_review", []string{a.ID}},
		{"entity=account:acc_Friendly_fraud", []string{b.ID}},
		{"status=closed&outcome=allow", []string{a.ID}},
		{"status=open", []string{open.ID}},
		{"status=closed&from=" + url.QueryEscape(b.CreatedAt.Format(time.RFC3339Nano)), []string{c.ID, b.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			if got := search(tt.query); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	var page struct {
		Cases      []review.Case `json:"cases"`
		NextCursor string        `json:"next_cursor"`
	}
	s.must(http.StatusOK, "aud", "GET", "/admin/cases?status=closed&limit=2", nil, &page)
	if len(page.Cases) != 2 || page.NextCursor == "" {
		t.Fatalf("first page = %d cases, cursor %q", len(page.Cases), page.NextCursor)
	}
	if got := search("status=closed&limit=2&cursor=" + page.NextCursor); !slices.Equal(got, []string{a.ID}) {
		t.Fatalf("second page = %v, want [%s]", got, a.ID)
	}

	// Export round-trip: every line is a case equal to what GET answers.
	code, body := s.raw("aud", "GET", "/admin/cases/export?status=closed&tag=card_testing", nil)
	if code != http.StatusOK {
		t.Fatalf("export = %d: %s", code, body)
	}
	var exported []review.Case
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c review.Case
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("line %q: %v", sc.Bytes(), err)
		}
		exported = append(exported, c)
	}
	if len(exported) != 2 || exported[0].ID != c.ID || exported[1].ID != a.ID {
		t.Fatalf("exported %d cases: %+v", len(exported), exported)
	}
	for _, e := range exported {
		var got review.Case
		s.must(http.StatusOK, "aud", "GET", "/admin/cases/"+e.ID, nil, &got)
		ej, _ := json.Marshal(e)
		gj, _ := json.Marshal(got)
		if !bytes.Equal(ej, gj) {
			t.Errorf("exported %s\n  differs from GET %s", ej, gj)
		}
	}
}

// TestRoles: analysts work the queue and cases, auditors read, gateways
// get nothing, admins everything; no key is 401.
func TestRoles(t *testing.T) {
	s := newStack(t)
	d := s.decide(s.pay("acc_r", "fp_r", 60_000, "USD"))
	s.sync()
	item := review.ItemID(d.DecisionID)
	var c review.Case
	s.must(http.StatusCreated, "adm", "POST", "/admin/cases", map[string]any{"title": "roles"}, &c)
	routes := []struct {
		method, path string
		body         any
		write        bool
	}{
		{"GET", "/admin/reviews", nil, false},
		{"GET", "/admin/reviews/" + item, nil, false},
		{"GET", "/admin/reviews/policy", nil, false},
		{"PUT", "/admin/reviews/policy", map[string]any{"rules": []any{}}, true},
		{"POST", "/admin/reviews/" + item + "/claim", nil, true},
		{"POST", "/admin/reviews/" + item + "/close", map[string]any{"resolution": "unsure"}, true},
		{"GET", "/admin/cases", nil, false},
		{"GET", "/admin/cases/export", nil, false},
		{"GET", "/admin/cases/" + c.ID, nil, false},
		{"POST", "/admin/cases", map[string]any{"title": "t"}, true},
		{"PATCH", "/admin/cases/" + c.ID, map[string]any{"title": "t2"}, true},
		{"POST", "/admin/cases/" + c.ID + "/notes", map[string]any{"text": "n"}, true},
		{"POST", "/admin/cases/" + c.ID + "/decisions", map[string]any{"decision_ids": []string{d.DecisionID}}, true},
	}
	for _, r := range routes {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			if code, _ := s.raw("", r.method, r.path, r.body); code != http.StatusUnauthorized {
				t.Errorf("no key = %d, want 401", code)
			}
			for _, who := range []string{"gw", "aud", "ana", "adm"} {
				allowed := who == "ana" || who == "adm" || (who == "aud" && !r.write)
				code, body := s.raw(who, r.method, r.path, r.body)
				switch {
				case allowed && code >= 400 && !(code == http.StatusConflict && r.write):
					t.Errorf("%s = %d, want through: %s", who, code, body)
				case !allowed && code != http.StatusForbidden:
					t.Errorf("%s = %d, want 403", who, code)
				}
			}
		})
	}
}
