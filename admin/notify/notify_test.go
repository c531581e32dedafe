package notify_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/admin/notify"
)

type eventBody struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt time.Time       `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

func TestSignedDecisionEvents(t *testing.T) {
	s := newStack(t)
	rc := newReceiver(t, ok)
	h := s.hook(rc.URL+"/hook", notify.EventDenied, notify.EventChallenged)
	if !strings.HasPrefix(h.Secret, "whsec_") || h.ID == "" {
		t.Fatalf("created webhook = %+v, want an id and a whsec_ secret", h)
	}
	// The secret is shown once: never again.
	for _, path := range []string{"/admin/webhooks", "/admin/webhooks/" + h.ID} {
		var raw json.RawMessage
		if code := s.call("ana", "GET", path, nil, &raw); code != http.StatusOK {
			t.Fatalf("GET %s = %d", path, code)
		}
		if strings.Contains(string(raw), h.Secret) || strings.Contains(string(raw), `"secret"`) {
			t.Errorf("GET %s shows the secret: %s", path, raw)
		}
	}

	deny, chal := s.decide(150000), s.decide(60000)
	s.decide(100) // allowed: no event
	if n := s.sync(); n != 2 {
		t.Fatalf("sync stored %d events, want 2", n)
	}
	s.deliver()
	got := rc.deliveries()
	if len(got) != 2 {
		t.Fatalf("receiver got %d deliveries, want 2", len(got))
	}
	want := map[string]string{deny.ID: notify.EventDenied, chal.ID: notify.EventChallenged}
	for _, d := range got {
		if err := verify(h.Secret, d.header.Get("Risk-Signature"), d.body, s.clock.now(), 5*time.Minute); err != nil {
			t.Errorf("delivery does not verify: %v", err)
		}
		if err := verify("whsec_wrong", d.header.Get("Risk-Signature"), d.body, s.clock.now(), 5*time.Minute); err == nil {
			t.Error("delivery verifies with a wrong secret")
		}
		var ev eventBody
		if err := json.Unmarshal(d.body, &ev); err != nil {
			t.Fatal(err)
		}
		var data notify.DecisionData
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ev.ID, "evt_") || ev.CreatedAt.IsZero() || d.header.Get("Risk-Event-Id") != ev.ID {
			t.Errorf("event id %q created_at %v header %q", ev.ID, ev.CreatedAt, d.header.Get("Risk-Event-Id"))
		}
		if want[data.DecisionID] != ev.Type {
			t.Errorf("event %s for decision %s, want %s", ev.Type, data.DecisionID, want[data.DecisionID])
		}
		if data.ConsoleURL != "https://risk.example.com/console/decisions/"+data.DecisionID {
			t.Errorf("console_url = %q", data.ConsoleURL)
		}
		if data.TransactionID == "" || data.Decision == "" || len(data.Reasons) == 0 {
			t.Errorf("decision data = %+v, want transaction id, decision and reasons", data)
		}
	}
	// A second pass finds nothing new: the cursor moved with the events.
	if n := s.sync(); n != 0 {
		t.Errorf("second sync stored %d events, want 0", n)
	}
	s.deliver()
	if n := len(rc.deliveries()); n != 2 {
		t.Errorf("receiver got %d deliveries after a second pass, want 2", n)
	}

	var page struct {
		Deliveries []notify.Attempt `json:"deliveries"`
	}
	if code := s.call("ana", "GET", "/admin/webhooks/"+h.ID+"/deliveries", nil, &page); code != http.StatusOK || len(page.Deliveries) != 2 {
		t.Fatalf("deliveries = %d %+v, want 2", code, page.Deliveries)
	}
	for _, a := range page.Deliveries {
		if !a.OK || a.Status != 200 || a.Attempt != 1 {
			t.Errorf("attempt = %+v, want ok 200 on the first attempt", a)
		}
	}
}

func TestRetriedAfter500AndTimeout(t *testing.T) {
	s := newStack(t, func(c *notify.Config) { c.Timeout = 300 * time.Millisecond })
	// 1: 500; 2: no answer within the timeout; 3: 200.
	rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
		case 2:
			<-r.Context().Done() // the sender gives up
		}
	})
	h := s.hook(rc.URL, notify.EventDenied)
	rec := s.decide(200000)
	s.sync()

	var hk struct {
		Pending int `json:"pending"`
	}
	if s.call("ana", "GET", "/admin/webhooks/"+h.ID, nil, &hk); hk.Pending != 1 {
		t.Errorf("pending = %d before delivery, want 1", hk.Pending)
	}
	s.deliver() // 500
	s.deliver() // not due yet: nothing sent
	if s.call("ana", "GET", "/admin/webhooks/"+h.ID, nil, &hk); hk.Pending != 1 {
		t.Errorf("pending = %d while retrying, want 1", hk.Pending)
	}
	if n := len(rc.deliveries()); n != 1 {
		t.Fatalf("%d requests before the backoff passed, want 1", n)
	}
	s.clock.add(2 * time.Second) // past the first backoff (1 s ± 20 %)
	s.deliver()                  // timeout
	s.clock.add(3 * time.Second) // past the second (2 s ± 20 %)
	s.deliver()                  // 200
	got := rc.deliveries()
	if len(got) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(got))
	}
	var ids []string
	for _, d := range got {
		var ev eventBody
		if err := json.Unmarshal(d.body, &ev); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
		if err := verify(h.Secret, d.header.Get("Risk-Signature"), d.body, s.clock.now(), 5*time.Minute); err != nil {
			t.Errorf("retry does not verify: %v", err)
		}
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("event ids %v, want one event retried (receivers dedupe by id)", ids)
	}
	var page struct {
		Deliveries []notify.Attempt `json:"deliveries"`
	}
	s.call("ana", "GET", "/admin/webhooks/"+h.ID+"/deliveries", nil, &page)
	if len(page.Deliveries) != 3 {
		t.Fatalf("deliveries log = %+v, want 3 attempts", page.Deliveries)
	}
	newest, mid, first := page.Deliveries[0], page.Deliveries[1], page.Deliveries[2]
	if first.Status != 500 || first.OK || first.NextAttemptAt.IsZero() {
		t.Errorf("first attempt = %+v, want 500 with a next attempt", first)
	}
	if mid.Status != 0 || mid.OK || !strings.Contains(mid.Error, "no answer within") {
		t.Errorf("second attempt = %+v, want a timeout", mid)
	}
	if !newest.OK || newest.Attempt != 3 {
		t.Errorf("third attempt = %+v, want delivered on attempt 3", newest)
	}
	if s.call("ana", "GET", "/admin/webhooks/"+h.ID, nil, &hk); hk.Pending != 0 {
		t.Errorf("pending = %d once delivered, want 0", hk.Pending)
	}
	_ = rec
}

func TestGiveUpThenResendByHand(t *testing.T) {
	s := newStack(t, func(c *notify.Config) { c.MaxRetryAge = time.Minute })
	var fail = true
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	h := s.hook(rc.URL, notify.EventDenied)
	s.decide(300000)
	s.sync()
	for range 20 {
		s.deliver()
		s.clock.add(time.Minute)
	}
	var page struct {
		Deliveries []notify.Attempt `json:"deliveries"`
	}
	s.call("ana", "GET", "/admin/webhooks/"+h.ID+"/deliveries", nil, &page)
	if len(page.Deliveries) == 0 || !page.Deliveries[0].GaveUp {
		t.Fatalf("deliveries = %+v, want the newest attempt to give up", page.Deliveries)
	}
	tries := len(rc.deliveries())
	evt := page.Deliveries[0].EventID
	fail = false
	if code := s.call("ana", "POST", "/admin/webhooks/"+h.ID+"/deliveries/"+evt+"/retry", nil, nil); code != http.StatusAccepted {
		t.Fatalf("retry = %d, want 202", code)
	}
	s.deliver()
	if got := len(rc.deliveries()); got != tries+1 {
		t.Fatalf("receiver got %d requests after the resend, want %d", got, tries+1)
	}
	if code := s.call("ana", "POST", "/admin/webhooks/"+h.ID+"/deliveries/evt_nope/retry", nil, nil); code != http.StatusNotFound {
		t.Errorf("retry of an unknown event = %d, want 404", code)
	}
	// Audited.
	entries, _, err := s.audit.Query(context.Background(), admin.AuditQuery{Action: "webhook"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	if strings.Join(actions, ",") != "webhook.retry,webhook.create" {
		t.Errorf("audited %v, want webhook.retry, webhook.create", actions)
	}
}

func TestSSRFRefused(t *testing.T) {
	public := netip.MustParseAddr("93.184.216.34")
	s := newStack(t, func(c *notify.Config) {
		c.AllowPrivate = false
		c.Resolver = resolver{
			"hooks.example.com": {public},
			"internal.example":  {public, netip.MustParseAddr("10.1.2.3")},
			// localhost resolves here to a public address at creation,
			// as a DNS answer may change: the dialer still refuses it.
			"localhost": {public},
		}
	})
	for _, u := range []string{
		"http://127.0.0.1/hook", "http://[::1]/hook", "http://10.0.0.8/", "http://192.168.1.1/", "http://172.16.0.1/",
		"http://169.254.169.254/latest/meta-data", "http://[fe80::1]/", "http://0.0.0.0/", "http://100.64.0.1/",
		"http://[::ffff:127.0.0.1]/", "http://internal.example/", "ftp://hooks.example.com/", "file:///etc/passwd",
		"hooks.example.com/x", "http://user:pw@hooks.example.com/", "http://nowhere.invalid/",
	} {
		var e struct {
			Field string `json:"field"`
		}
		if code := s.call("ana", "POST", "/admin/webhooks", map[string]any{"url": u, "events": []string{notify.EventDenied}}, &e); code != http.StatusBadRequest || e.Field != "url" {
			t.Errorf("create %s = %d field %q, want 400 on url", u, code, e.Field)
		}
	}
	if code := s.call("ana", "POST", "/admin/webhooks", map[string]any{"url": "https://hooks.example.com/x", "events": []string{notify.EventDenied}}, nil); code != http.StatusCreated {
		t.Errorf("create on a public host = %d, want 201", code)
	}

	// At delivery: the host now resolves to loopback; the dialer refuses.
	rc := newReceiver(t, ok)
	port := rc.URL[strings.LastIndexByte(rc.URL, ':'):]
	h := s.hook("http://localhost"+port+"/hook", notify.EventDenied)
	s.decide(500000)
	s.sync()
	s.deliver()
	if n := len(rc.deliveries()); n != 0 {
		t.Fatalf("a loopback receiver got %d deliveries", n)
	}
	var page struct {
		Deliveries []notify.Attempt `json:"deliveries"`
	}
	s.call("ana", "GET", "/admin/webhooks/"+h.ID+"/deliveries", nil, &page)
	if len(page.Deliveries) != 1 || page.Deliveries[0].OK || !strings.Contains(page.Deliveries[0].Error, "refused") {
		t.Errorf("deliveries = %+v, want one refused attempt", page.Deliveries)
	}
}

func TestWebhookAPI(t *testing.T) {
	s := newStack(t)
	bad := []map[string]any{
		{"url": "https://x.example/", "events": []string{}},
		{"url": "https://x.example/", "events": []string{"decision.exploded"}},
		{"url": "https://x.example/", "events": []string{notify.EventDenied}, "description": strings.Repeat("x", 501)},
		{"url": "https://x.example/", "events": []string{notify.EventDenied}, "extra": 1},
		{"url": "https://x.example/" + strings.Repeat("a", 2048), "events": []string{notify.EventDenied}},
	}
	for _, b := range bad {
		if code := s.call("ana", "POST", "/admin/webhooks", b, nil); code != http.StatusBadRequest {
			t.Errorf("create %v = %d, want 400", b, code)
		}
	}
	rc := newReceiver(t, ok)
	h := s.hook(rc.URL, notify.EventAlertFired)
	for key, want := range map[string]int{"aud": 403, "gw": 403, "adm": 200, "ana": 200} {
		if code := s.call(key, "GET", "/admin/webhooks", nil, nil); code != want {
			t.Errorf("GET /admin/webhooks as %s = %d, want %d", key, code, want)
		}
	}
	var a notify.Attempt
	if code := s.call("ana", "POST", "/admin/webhooks/"+h.ID+"/test", nil, &a); code != http.StatusOK || !a.OK {
		t.Fatalf("test = %d %+v", code, a)
	}
	d := rc.deliveries()
	if len(d) != 1 || verify(h.Secret, d[0].header.Get("Risk-Signature"), d[0].body, s.clock.now(), time.Minute) != nil {
		t.Fatalf("test delivery missing or unsigned: %d", len(d))
	}
	if code := s.call("ana", "DELETE", "/admin/webhooks/"+h.ID, nil, nil); code != http.StatusNoContent {
		t.Errorf("delete = %d", code)
	}
	if code := s.call("ana", "GET", "/admin/webhooks/"+h.ID, nil, nil); code != http.StatusNotFound {
		t.Errorf("get after delete = %d, want 404", code)
	}
	// Events published for a deleted hook go nowhere.
	if _, err := s.n.Publish(context.Background(), notify.EventAlertFired, "", map[string]string{"x": "y"}); err != nil {
		t.Fatal(err)
	}
	s.deliver()
	if n := len(rc.deliveries()); n != 1 {
		t.Errorf("deleted hook got %d deliveries, want 1 (the test)", n)
	}
}

// TestAuditEvents: a publish, a rollback and a list change in the audit
// trail become ruleset.published, ruleset.rolled_back and list.changed.
func TestAuditEvents(t *testing.T) {
	s := newStack(t)
	rc := newReceiver(t, ok)
	s.hook(rc.URL, notify.EventPublished, notify.EventRolledBack, notify.EventListChanged)
	ctx := context.Background()
	for _, e := range []admin.Entry{
		{Action: "ruleset.publish", Target: "ruleset", After: map[string]int{"version": 2}},
		{Action: "rule.update", Target: "rule:x"},
		{Action: "ruleset.rollback", Target: "ruleset", After: map[string]int{"version": 3}},
		{Action: "list.items.add", Target: "list:blocked_cards", After: []string{"fp_secret"}},
	} {
		if _, err := s.audit.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.sync(); n != 3 {
		t.Fatalf("sync stored %d events, want 3", n)
	}
	s.deliver()
	var types []string
	for _, d := range rc.deliveries() {
		var ev eventBody
		_ = json.Unmarshal(d.body, &ev)
		types = append(types, ev.Type)
		if ev.Type == notify.EventListChanged && strings.Contains(string(ev.Data), "fp_secret") {
			t.Errorf("list.changed carries the items: %s", ev.Data)
		}
	}
	if got := strings.Join(types, ","); got != "ruleset.published,ruleset.rolled_back,list.changed" {
		t.Errorf("events %s", got)
	}
}
