package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riskengine/risk/server/client"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func payment(tx, merchant string) client.Payment {
	return client.Payment{
		TransactionID: tx, Amount: 12999, Currency: "USD",
		Account:    &client.Account{ID: "acc_42", Country: "US"},
		Card:       &client.Card{Fingerprint: "fp_9a", BIN: "411111", Country: "US"},
		Device:     &client.Device{ID: "dev_7", IP: "203.0.113.7", IPCountry: "US"},
		Merchant:   &client.Merchant{ID: merchant, MCC: "5999", Country: "US"},
		Attributes: map[string]any{"channel": "web"},
	}
}

// TestDecisionCalls: decide, replay, explain, search and feedback against
// the real engine; API errors are *client.Error with the code and field.
func TestDecisionCalls(t *testing.T) {
	s := newEngineServer(t)
	c := s.client(t, client.Config{})
	ctx := context.Background()
	p := payment("tx_client_1", "m_1")
	d, err := c.Decide(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if d.DecisionID == "" || d.TransactionID != p.TransactionID || d.Replayed || d.Fallback || !slices.Contains([]client.Outcome{client.Allow, client.Challenge, client.Deny}, d.Outcome) {
		t.Fatalf("decision = %+v", d)
	}
	again, err := c.Decide(ctx, p)
	if err != nil || !again.Replayed || again.DecisionID != d.DecisionID {
		t.Errorf("replay = %+v, %v; want the same decision, replayed", again, err)
	}

	exp, err := c.Explain(ctx, d.DecisionID)
	if err != nil {
		t.Fatal(err)
	}
	sent, _ := json.Marshal(p)
	if exp.DecisionID != d.DecisionID || !bytes.Equal(exp.Request, sent) || len(exp.Rules) == 0 {
		t.Errorf("explanation: id %s, request %s (sent %s), %d rules", exp.DecisionID, exp.Request, sent, len(exp.Rules))
	}
	page, err := c.Search(ctx, client.Query{TransactionID: p.TransactionID, Limit: 10})
	if err != nil || len(page.Decisions) != 1 || page.Decisions[0].DecisionID != d.DecisionID {
		t.Errorf("search = %+v, %v", page, err)
	}

	fb, err := c.Feedback(ctx, d.DecisionID, "legit", "customer confirmed")
	if err != nil || !fb.Added || fb.DecisionID != d.DecisionID {
		t.Errorf("feedback = %+v, %v", fb, err)
	}
	fb, err = c.FeedbackByTransaction(ctx, p.TransactionID, "legit", "")
	if err != nil || fb.Added {
		t.Errorf("feedback again by transaction = %+v, %v; want added false", fb, err)
	}

	tests := []struct {
		name        string
		call        func() error
		status      int
		code, field string
	}{
		{"same id, another amount", func() error {
			q := p
			q.Amount++
			_, err := c.Decide(ctx, q)
			return err
		}, 409, "conflict", ""},
		{"a card number", func() error {
			q := payment("tx_client_pan", "m_1")
			q.Attributes = map[string]any{"note": "4111111111111111"}
			_, err := c.Decide(ctx, q)
			return err
		}, 400, "card_number_refused", "attributes.note"},
		{"an unknown decision", func() error { _, err := c.Explain(ctx, "dec_unknown"); return err }, 404, "not_found", ""},
		{"a bad limit", func() error { _, err := c.Search(ctx, client.Query{Limit: 501}); return err }, 400, "invalid_limit", "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want a *client.Error", err)
			}
			if e.Status != tt.status || e.Code != tt.code || (tt.field != "" && e.Field != tt.field) || e.RequestID == "" {
				t.Errorf("error = %+v, want %d %s field %q", e, tt.status, tt.code, tt.field)
			}
			if !client.IsCode(err, tt.code) {
				t.Errorf("IsCode(%q) = false", tt.code)
			}
		})
	}
}

// TestDecideRetries: 429 and 5xx answers and a hung attempt are retried
// with the same body, transaction id included, and the engine decides the
// payment once.
func TestDecideRetries(t *testing.T) {
	s := newEngineServer(t)
	tests := []struct {
		name   string
		faults []fault
	}{
		{"503", []fault{unavailable}},
		{"502 then 503", []fault{badGateway, unavailable}},
		{"429 with Retry-After", []fault{rateLimited}},
		{"a hung attempt", []fault{hang}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := s.client(t, client.Config{DecideTimeout: 30 * time.Second, AttemptTimeout: 2 * time.Second, Retries: 3})
			p := payment("tx_retry_"+string(rune('a'+i)), "m_1")
			s.faults.set(pass, tt.faults...)
			d, err := c.Decide(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if d.Fallback || d.Replayed || d.DecisionID == "" {
				t.Errorf("decision = %+v, want a fresh engine decision", d)
			}
			sent := s.faults.sent()
			if len(sent) != len(tt.faults)+1 {
				t.Fatalf("%d attempts, want %d", len(sent), len(tt.faults)+1)
			}
			for _, b := range sent[1:] {
				if b != sent[0] {
					t.Errorf("a retry sent %s, the first attempt %s", b, sent[0])
				}
			}
			if !strings.Contains(sent[0], `"transaction_id":"`+p.TransactionID+`"`) {
				t.Errorf("body %s lacks the transaction id", sent[0])
			}
		})
	}

	t.Run("a publish is not retried", func(t *testing.T) {
		c := s.client(t, client.Config{Retries: 3})
		s.faults.set(pass, unavailable)
		_, err := c.Publish(context.Background(), "once")
		if !client.IsCode(err, "unavailable") {
			t.Errorf("err = %v, want unavailable", err)
		}
		if n := len(s.faults.sent()); n != 1 {
			t.Errorf("%d attempts, want 1", n)
		}
	})

	t.Run("a 4xx is not retried", func(t *testing.T) {
		c := s.client(t, client.Config{Retries: 3})
		s.faults.set(pass)
		q := payment("tx_retry_a", "m_1")
		q.Amount = 1
		if _, err := c.Decide(context.Background(), q); !client.IsCode(err, "conflict") {
			t.Errorf("err = %v, want conflict", err)
		}
		if n := len(s.faults.sent()); n != 1 {
			t.Errorf("%d attempts, want 1", n)
		}
	})
}

// TestDecideFallback: when the engine does not answer within the
// deadline, the fallback decides per merchant; without one the error wraps
// ErrTimeout; a 4xx never falls back.
func TestDecideFallback(t *testing.T) {
	s := newEngineServer(t)
	s.faults.set(hang)
	fallback := client.FailOpenClosed(client.Challenge, map[string]client.Outcome{"m_open": client.Allow, "m_closed": client.Deny})
	c := s.client(t, client.Config{DecideTimeout: 300 * time.Millisecond, AttemptTimeout: 100 * time.Millisecond, Fallback: fallback})
	for merchant, want := range map[string]client.Outcome{"m_open": client.Allow, "m_closed": client.Deny, "m_other": client.Challenge} {
		d, err := c.Decide(context.Background(), payment("tx_fb_"+merchant, merchant))
		if err != nil {
			t.Fatalf("%s: %v", merchant, err)
		}
		if !d.Fallback || !d.Degraded || d.Outcome != want || !strings.HasPrefix(d.DegradedCause, "client fallback: ") {
			t.Errorf("%s: %+v, want a %s fallback", merchant, d, want)
		}
	}
	if n := len(s.faults.sent()); n < 3 {
		t.Errorf("%d attempts for 3 payments", n)
	}

	s.faults.set(unavailable)
	if d, err := c.Decide(context.Background(), payment("tx_fb_503", "m_closed")); err != nil || !d.Fallback || d.Outcome != client.Deny {
		t.Errorf("engine unavailable: %+v, %v; want the merchant's fallback", d, err)
	}

	s.faults.set(hang)
	bare := s.client(t, client.Config{DecideTimeout: 300 * time.Millisecond, AttemptTimeout: 100 * time.Millisecond})
	if _, err := bare.Decide(context.Background(), payment("tx_fb_bare", "m_1")); !errors.Is(err, client.ErrTimeout) {
		t.Errorf("without a fallback: err = %v, want ErrTimeout", err)
	}

	s.faults.set(pass)
	c = s.client(t, client.Config{DecideTimeout: 30 * time.Second, Fallback: fallback})
	p := payment("tx_fb_4xx", "m_open")
	if d, err := c.Decide(context.Background(), p); err != nil || d.Fallback {
		t.Fatalf("%+v, %v", d, err)
	}
	p.Amount++
	if d, err := c.Decide(context.Background(), p); !client.IsCode(err, "conflict") {
		t.Errorf("conflict: %+v, %v; want the error, not a fallback", d, err)
	}
}

// TestAdminCalls: rules, publish, rollback, lists and items, backtests and
// backup against the real admin API.
func TestAdminCalls(t *testing.T) {
	s := newEngineServer(t)
	c := s.client(t, client.Config{})
	ctx := context.Background()

	before, err := c.Rules(ctx)
	if err != nil || len(before) == 0 {
		t.Fatalf("rules = %v, %v", before, err)
	}
	r, err := c.CreateRule(ctx, client.Rule{ID: "client_big", Expression: "amount > 1000000", Action: "deny", Reason: "too_big", Message: "Too large."})
	if err != nil || r.Version != 1 || r.Mode != "active" {
		t.Fatalf("create = %+v, %v", r, err)
	}
	_, err = c.CreateRule(ctx, client.Rule{ID: "client_bad", Expression: "amount >", Action: "deny"})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 422 || len(e.Errors) == 0 {
		t.Errorf("a bad rule: %v, want 422 with the compile errors", err)
	}
	r.Expression = "amount > 2000000"
	if r, err = c.PutRule(ctx, r); err != nil || r.Expression != "amount > 2000000" {
		t.Errorf("put = %+v, %v", r, err)
	}
	v1, err := c.Publish(ctx, "add client_big")
	if err != nil || !v1.Live {
		t.Fatalf("publish = %+v, %v", v1, err)
	}
	if err := c.DeleteRule(ctx, "client_big"); err != nil {
		t.Fatal(err)
	}
	v2, err := c.Publish(ctx, "remove client_big")
	if err != nil || v2.Version != v1.Version+1 {
		t.Fatalf("publish = %+v, %v", v2, err)
	}
	v3, err := c.Rollback(ctx, v1.Version, "bring it back")
	if err != nil || v3.Version != v2.Version+1 || v3.Hash != v1.Hash {
		t.Errorf("rollback = %+v (v1 %+v), %v", v3, v1, err)
	}

	if _, err := c.PutList(ctx, "client_ranges", "cidr", "offices"); err != nil {
		t.Fatal(err)
	}
	added, err := c.AddItems(ctx, "client_ranges", client.Item{Value: "10.1.0.0/16", Reason: "office"}, client.Item{Value: "192.0.2.0/24", ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil || len(added) != 2 {
		t.Fatalf("add items = %+v, %v", added, err)
	}
	if err := c.DeleteItem(ctx, "client_ranges", "10.1.0.0/16"); err != nil {
		t.Fatal(err)
	}
	items, err := c.ListItems(ctx, "client_ranges", "", 10)
	if err != nil || len(items.Items) != 1 || items.Items[0].Value != "192.0.2.0/24" {
		t.Errorf("items = %+v, %v", items, err)
	}
	lists, err := c.Lists(ctx)
	if err != nil || !slices.ContainsFunc(lists, func(l client.List) bool { return l.Name == "client_ranges" && l.Items == 1 }) {
		t.Errorf("lists = %+v, %v", lists, err)
	}

	for i := range 3 {
		if _, err := c.Decide(ctx, payment("tx_bt_"+string(rune('a'+i)), "m_1")); err != nil {
			t.Fatal(err)
		}
	}
	bt, err := c.StartBacktest(ctx, client.BacktestRequest{Draft: true, From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute)})
	if err != nil || bt.ID == "" {
		t.Fatalf("start backtest = %+v, %v", bt, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for bt.State != "done" && bt.State != "failed" && bt.State != "canceled" {
		if time.Now().After(deadline) {
			t.Fatalf("backtest still %s", bt.State)
		}
		<-time.After(10 * time.Millisecond) // a poll interval, not a synchronisation
		if bt, err = c.Backtest(ctx, bt.ID); err != nil {
			t.Fatal(err)
		}
	}
	if bt.State != "done" || len(bt.Result) == 0 || bt.Progress.Processed < 3 {
		t.Errorf("backtest = %+v", bt)
	}

	var buf bytes.Buffer
	if err := c.Backup(ctx, &buf); err != nil || buf.Len() == 0 {
		t.Errorf("backup: %d bytes, %v", buf.Len(), err)
	}
}
