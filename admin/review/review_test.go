package review_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/admin/review"
	"github.com/riskengine/risk/features"
)

// TestReviewFlowOverHTTP: a review rule → an item → claim → close as legit
// raises the account's limit as feedback does; a second item closed as
// fraud blocks the card on the next payment.
func TestReviewFlowOverHTTP(t *testing.T) {
	s := newStack(t)
	small := s.decide(s.pay("acc_1", "fp_1", 1_000, "USD"))
	if small.Review {
		t.Fatalf("a small payment asks for review")
	}
	d := s.decide(s.pay("acc_1", "fp_1", 60_000, "USD"))
	if d.Decision != "allow" || !d.Review || d.Limits.SingleMax != 100_000 {
		t.Fatalf("review payment: %s review=%v single_max=%d, want allow, review, 100000", d.Decision, d.Review, d.Limits.SingleMax)
	}
	if n := s.sync(); n != 1 {
		t.Fatalf("sync opened %d items, want 1", n)
	}
	if n := s.sync(); n != 0 {
		t.Fatalf("a second sync opened %d items, want 0", n)
	}
	var list struct {
		Items []itemOut `json:"items"`
	}
	s.must(http.StatusOK, "aud", "GET", "/admin/reviews", nil, &list)
	if len(list.Items) != 1 {
		t.Fatalf("open items = %+v, want 1", list.Items)
	}
	it := list.Items[0]
	if it.ID != review.ItemID(d.DecisionID) || it.Status != review.StatusOpen || !slices.Equal(it.Why, []string{"rule:big_review"}) || it.Queue != review.DefaultQueue || it.AgeSeconds < 0 {
		t.Fatalf("item = %+v", it)
	}

	var detail struct {
		itemOut
		Explanation struct {
			DecisionID string `json:"decision_id"`
			Review     bool   `json:"review"`
			Rules      []struct {
				ID      string `json:"id"`
				Matched bool   `json:"matched"`
			} `json:"rules"`
		} `json:"explanation"`
		Related []review.Related `json:"related"`
	}
	s.must(http.StatusOK, "aud", "GET", "/admin/reviews/"+it.ID, nil, &detail)
	if detail.Explanation.DecisionID != d.DecisionID || !detail.Explanation.Review || len(detail.Explanation.Rules) == 0 {
		t.Fatalf("explanation = %+v", detail.Explanation)
	}
	var card *review.Related
	for i := range detail.Related {
		if detail.Related[i].Type == "card" {
			card = &detail.Related[i]
		}
	}
	if card == nil || len(card.Decisions) != 1 || card.Decisions[0].DecisionID != small.DecisionID {
		t.Fatalf("related = %+v, want the card's other decision", detail.Related)
	}

	s.must(http.StatusOK, "ana", "POST", "/admin/reviews/"+it.ID+"/claim", nil, nil)
	s.must(http.StatusConflict, "bob", "POST", "/admin/reviews/"+it.ID+"/claim", nil, nil)
	s.must(http.StatusConflict, "bob", "POST", "/admin/reviews/"+it.ID+"/close", map[string]any{"resolution": "legit"}, nil)
	s.must(http.StatusBadRequest, "ana", "POST", "/admin/reviews/"+it.ID+"/close", map[string]any{"resolution": "maybe"}, nil)
	var closed struct {
		itemOut
		Feedback struct {
			Label      string  `json:"label"`
			Added      bool    `json:"added"`
			TrustAfter float64 `json:"trust_after"`
		} `json:"feedback"`
	}
	s.must(http.StatusOK, "ana", "POST", "/admin/reviews/"+it.ID+"/close", map[string]any{"resolution": "legit", "note": "called the customer", "tags": []string{"vip"}}, &closed)
	if closed.Status != review.StatusClosed || closed.Resolution != "legit" || closed.Assignee != "ana" || closed.Feedback.Label != "legit" || !closed.Feedback.Added || closed.Feedback.TrustAfter != 1.25 {
		t.Fatalf("closed = %+v", closed)
	}
	s.must(http.StatusConflict, "ana", "POST", "/admin/reviews/"+it.ID+"/close", map[string]any{"resolution": "legit"}, nil)
	s.must(http.StatusOK, "aud", "GET", "/admin/reviews?status=closed", nil, &list)
	if len(list.Items) != 1 || list.Items[0].ID != it.ID {
		t.Fatalf("closed items = %+v", list.Items)
	}
	s.must(http.StatusOK, "aud", "GET", "/admin/reviews", nil, &list)
	if len(list.Items) != 0 {
		t.Fatalf("open items after close = %+v", list.Items)
	}
	entries, _, err := s.audit.Query(context.Background(), admin.AuditQuery{Action: "review.close"})
	if err != nil || len(entries) != 1 || entries[0].Actor != "ana" || entries[0].Target != "review:"+it.ID {
		t.Fatalf("audit = %+v, %v", entries, err)
	}

	// The legit label raised trust: the next payment's limit is higher.
	s.clock.add(time.Hour)
	if next := s.decide(s.pay("acc_1", "fp_1", 1_000, "USD")); next.Limits.SingleMax != 125_000 {
		t.Errorf("single_max after legit = %d, want 125000", next.Limits.SingleMax)
	}

	// Fraud: the card is blocked on the next payment.
	bad := s.decide(s.pay("acc_2", "fp_bad", 70_000, "USD"))
	if bad.Decision != "allow" || !bad.Review {
		t.Fatalf("second review payment: %s review=%v", bad.Decision, bad.Review)
	}
	s.sync()
	id := review.ItemID(bad.DecisionID)
	s.must(http.StatusOK, "bob", "POST", "/admin/reviews/"+id+"/claim", nil, nil)
	s.must(http.StatusOK, "bob", "POST", "/admin/reviews/"+id+"/close", map[string]any{"resolution": "fraud"}, nil)
	if after := s.decide(s.pay("acc_3", "fp_bad", 1_000, "USD")); after.Decision != "deny" || !strings.Contains(after.codes(), "card_blocked") {
		t.Errorf("next payment on the card: %s (%s), want deny card_blocked", after.Decision, after.codes())
	}
	if len(s.opened) != 2 {
		t.Errorf("OnOpen saw %d items, want 2", len(s.opened))
	}
}

// TestConcurrentClaims: reviewers claiming one item at once; exactly one
// wins, the others get 409.
func TestConcurrentClaims(t *testing.T) {
	s := newStack(t)
	d := s.decide(s.pay("acc_1", "fp_1", 60_000, "USD"))
	s.sync()
	id := review.ItemID(d.DecisionID)
	reviewers := []string{"ana", "bob", "carl", "dora"}
	codes := make([]int, len(reviewers))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, who := range reviewers {
		wg.Go(func() {
			<-start
			codes[i] = s.call(who, "POST", "/admin/reviews/"+id+"/claim", nil, nil)
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i, c := range codes {
		switch c {
		case http.StatusOK:
			won++
		case http.StatusConflict:
		default:
			t.Errorf("%s: %d", reviewers[i], c)
		}
	}
	if won != 1 {
		t.Fatalf("claims won = %d (%v), want exactly 1", won, codes)
	}
	winner := reviewers[slices.Index(codes, http.StatusOK)]
	var got itemOut
	s.must(http.StatusOK, "aud", "GET", "/admin/reviews/"+id, nil, &got)
	if got.Status != review.StatusClaimed || got.Assignee != winner {
		t.Errorf("item = %s by %s, want claimed by %s", got.Status, got.Assignee, winner)
	}
}

// TestClaimExpires: a claim holds for the claim TTL, then anyone may
// claim the item; listings follow.
func TestClaimExpires(t *testing.T) {
	s := newStack(t)
	d := s.decide(s.pay("acc_1", "fp_1", 60_000, "USD"))
	s.sync()
	id := review.ItemID(d.DecisionID)
	s.must(http.StatusOK, "ana", "POST", "/admin/reviews/"+id+"/claim", nil, nil)
	var list struct {
		Items []itemOut `json:"items"`
	}
	s.must(http.StatusOK, "aud", "GET", "/admin/reviews?status=claimed&assignee=ana", nil, &list)
	if len(list.Items) != 1 {
		t.Fatalf("claimed by ana = %d items, want 1", len(list.Items))
	}
	s.clock.add(claimTTL - time.Second)
	s.must(http.StatusConflict, "bob", "POST", "/admin/reviews/"+id+"/claim", nil, nil)
	s.clock.add(time.Second)
	var open struct {
		Items []itemOut `json:"items"`
	}
	s.must(http.StatusOK, "aud", "GET", "/admin/reviews?status=open", nil, &open)
	if len(open.Items) != 1 || open.Items[0].Assignee != "" {
		t.Fatalf("open after expiry = %+v, want the item, unassigned", open.Items)
	}
	s.must(http.StatusOK, "bob", "POST", "/admin/reviews/"+id+"/claim", nil, nil)
	s.must(http.StatusOK, "aud", "GET", "/admin/reviews?status=claimed&assignee=bob", nil, &list)
	if len(list.Items) != 1 {
		t.Fatalf("claimed by bob = %d items, want 1", len(list.Items))
	}
	s.must(http.StatusConflict, "ana", "POST", "/admin/reviews/"+id+"/close", map[string]any{"resolution": "unsure"}, nil)
}

// TestReviewPolicy: the policy opens items for denies above 1,000.00 EUR
// in its queue, and nothing for smaller ones; a policy that would match
// everything is refused.
func TestReviewPolicy(t *testing.T) {
	s := newStack(t)
	s.must(http.StatusBadRequest, "ana", "PUT", "/admin/reviews/policy", map[string]any{"rules": []map[string]any{{"name": "all"}}}, nil)
	s.must(http.StatusForbidden, "aud", "PUT", "/admin/reviews/policy", map[string]any{"rules": []map[string]any{}}, nil)
	policy := map[string]any{"rules": []map[string]any{{"name": "big_denies", "queue": "high_value", "outcomes": []string{"deny"}, "min_amount": 100_000, "currency": "EUR"}}}
	s.must(http.StatusOK, "ana", "PUT", "/admin/reviews/policy", policy, nil)
	var got review.Policy
	s.must(http.StatusOK, "aud", "GET", "/admin/reviews/policy", nil, &got)
	if len(got.Rules) != 1 || got.Rules[0].Name != "big_denies" {
		t.Fatalf("policy = %+v", got)
	}
	if _, err := s.lists.AddItems("blocked_cards", []features.Item{{Value: "fp_stolen"}}); err != nil {
		t.Fatal(err)
	}
	bigDeny := s.decide(s.pay("acc_1", "fp_stolen", 150_000, "EUR"))
	smallDeny := s.decide(s.pay("acc_2", "fp_stolen", 20_000, "EUR"))
	bigUSD := s.decide(s.pay("acc_3", "fp_stolen", 150_000, "GBP"))
	if bigDeny.Decision != "deny" || smallDeny.Decision != "deny" || bigUSD.Decision != "deny" || bigDeny.Review {
		t.Fatalf("decisions: %s %s %s review=%v", bigDeny.Decision, smallDeny.Decision, bigUSD.Decision, bigDeny.Review)
	}
	s.sync()
	var list struct {
		Items []itemOut `json:"items"`
	}
	s.must(http.StatusOK, "aud", "GET", "/admin/reviews?queue=high_value", nil, &list)
	if len(list.Items) != 1 || list.Items[0].DecisionID != bigDeny.DecisionID || !slices.Equal(list.Items[0].Why, []string{"policy:big_denies"}) {
		t.Fatalf("high_value queue = %+v, want the big EUR deny only", list.Items)
	}
	entries, _, err := s.audit.Query(context.Background(), admin.AuditQuery{Action: "review.policy"})
	if err != nil || len(entries) != 1 {
		t.Fatalf("audit = %+v, %v", entries, err)
	}
}

// TestItemOpeningSurvivesRestart: decisions acknowledged, then the store
// closed without the queue having read them (a process killed right after
// answering); reopened, the queue opens their items once.
func TestItemOpeningSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	c := &clock{}
	s := openStack(t, dir, c)
	var ids []string
	for i := range 3 {
		d := s.decide(s.pay("acc_1", "fp_1", int64(60_000+i), "USD"))
		ids = append(ids, review.ItemID(d.DecisionID))
	}
	s.decide(s.pay("acc_1", "fp_1", 1_000, "USD"))
	s.close()

	s2 := openStack(t, dir, c)
	if n := s2.sync(); n != 3 {
		t.Fatalf("after restart sync opened %d items, want 3", n)
	}
	for _, id := range ids {
		if _, err := s2.queue.Get(context.Background(), id); err != nil {
			t.Errorf("item %s: %v", id, err)
		}
	}
	s2.close()
	s3 := openStack(t, dir, c)
	if n := s3.sync(); n != 0 {
		t.Fatalf("after a second restart sync opened %d items, want 0", n)
	}
}

// TestListPaging: oldest first by default, newest with order=newest, and
// the cursor walks every item once.
func TestListPaging(t *testing.T) {
	s := newStack(t)
	var want []string
	for i := range 5 {
		d := s.decide(s.pay("acc_p", "fp_p", int64(60_000+i), "USD"))
		want = append(want, review.ItemID(d.DecisionID))
		s.clock.add(time.Second)
	}
	s.sync()
	var got []string
	cursor := ""
	for range 10 {
		var page struct {
			Items      []itemOut `json:"items"`
			NextCursor string    `json:"next_cursor"`
		}
		s.must(http.StatusOK, "aud", "GET", "/admin/reviews?limit=2&cursor="+cursor, nil, &page)
		for _, it := range page.Items {
			got = append(got, it.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged oldest first = %v, want %v", got, want)
	}
	var newest struct {
		Items []itemOut `json:"items"`
	}
	s.must(http.StatusOK, "aud", "GET", "/admin/reviews?order=newest&limit=1", nil, &newest)
	if len(newest.Items) != 1 || newest.Items[0].ID != want[len(want)-1] {
		t.Fatalf("newest = %+v, want %s", newest.Items, want[len(want)-1])
	}
	s.must(http.StatusBadRequest, "aud", "GET", "/admin/reviews?cursor=nope", nil, nil)
	s.must(http.StatusBadRequest, "aud", "GET", "/admin/reviews?status=lost", nil, nil)
}
