package notify_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/admin/notify"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/limits"
	"github.com/riskengine/risk/rules"
	"github.com/riskengine/risk/server"
)

// clock is a settable clock starting at the real time, so TTLs stay
// sensible.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

// keys is a fake Authenticator: the token is the key's name.
type keys map[string]engine.Role

func (k keys) Authenticate(_ context.Context, token string) (engine.Principal, error) {
	if r, ok := k[token]; ok {
		return engine.Principal{KeyID: token, Name: token, Role: r}, nil
	}
	return engine.Principal{}, fmt.Errorf("key: %w", engine.ErrNotFound)
}

var testKeys = keys{"ana": engine.RoleAnalyst, "aud": engine.RoleAuditor, "gw": engine.RoleGateway, "adm": engine.RoleAdmin}

// testSpec denies 1000.00 and more, challenges 500.00 and more.
var testSpec = rules.Spec{Rules: []rules.Rule{
	{ID: "big_deny", Expression: "amount >= 100000", Action: engine.ActionDeny, Reason: "too_big", Message: "Payment <declined>."},
	{ID: "mid_challenge", Expression: "amount >= 50000", Action: engine.ActionChallenge, Reason: "check"},
}}

// stack is an engine on a real Badger in a temporary directory, a
// Notifier on it (background loops not started: tests call sync and
// deliver), and the webhook routes behind a real HTTP server.
type stack struct {
	t      testing.TB
	clock  *clock
	store  *features.Store
	audit  *admin.Audit
	engine *engine.Engine
	n      *notify.Notifier
	alerts *notify.Alerts
	http   *httptest.Server
	tx     atomic.Int64
}

type option func(*notify.Config)

func newStack(t testing.TB, opts ...option) *stack {
	t.Helper()
	ctx := context.Background()
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	s := &stack{t: t, clock: c}
	s.store = features.New(features.Options{Dir: t.TempDir(), FlushInterval: 50 * time.Millisecond, Now: c.now, LimitsEntity: limits.EntityAccount})
	if err := s.store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	s.audit = admin.NewAudit(s.store.KV(), c.now)
	set, err := rules.Compile(testSpec, rules.Env{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	s.engine = engine.New(engine.Config{Store: s.store, Features: s.store, Now: c.now, Budget: 5 * time.Second})
	s.engine.SetRules(set)
	cfg := notify.Config{
		DB: s.store.KV(), Decisions: s.store, Audit: s.audit, PublicURL: "https://risk.example.com",
		AllowPrivate: true, RetryBase: time.Second, MaxRetryDelay: time.Minute, Timeout: 2 * time.Second, Now: c.now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	s.n = notify.New(cfg)
	if err := s.n.Load(ctx); err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{Engine: s.engine, Decisions: s.store, Feedback: s.engine, Auth: testKeys})
	notify.Register(srv.Group("/admin"), srv.Require, s.n, s.audit)
	s.alerts = notify.NewAlerts(notify.AlertsConfig{DB: s.store.KV(), Notifier: s.n, Now: c.now})
	if err := s.alerts.Load(ctx); err != nil {
		t.Fatal(err)
	}
	notify.RegisterAlerts(srv.Group("/admin"), srv.Require, s.alerts, s.audit)
	s.http = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		s.http.Close()
		if err := s.store.Close(context.Background()); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// decide decides a payment of amount and returns its record.
func (s *stack) decide(amount int64) *engine.Record {
	s.t.Helper()
	p := engine.Payment{TransactionID: fmt.Sprintf("tx_%d", s.tx.Add(1)), Amount: amount, Currency: "USD", Merchant: engine.Merchant{ID: "m_1"}}
	rec, _, err := s.engine.Decide(context.Background(), p, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return rec
}

// sync reads the logs into the outbox.
func (s *stack) sync() int {
	s.t.Helper()
	n, err := s.n.Sync(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// deliver runs one delivery pass and waits for it.
func (s *stack) deliver() {
	s.t.Helper()
	if err := s.n.Deliver(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

// call sends body as JSON with key as the bearer token and decodes the
// answer into out; it returns the status.
func (s *stack) call(key, method, path string, body, out any) int {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.http.URL+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

type created struct {
	ID     string   `json:"id"`
	Secret string   `json:"secret"`
	Events []string `json:"events"`
}

// hook creates a webhook to url for events and returns it with its secret.
func (s *stack) hook(url string, events ...string) created {
	s.t.Helper()
	var h created
	if code := s.call("ana", "POST", "/admin/webhooks", map[string]any{"url": url, "events": events}, &h); code != http.StatusCreated {
		s.t.Fatalf("create webhook = %d", code)
	}
	return h
}

// delivery is one request a receiver got.
type delivery struct {
	header http.Header
	body   []byte
}

// receiver is a webhook endpoint: answer decides each response by the
// number of the request (from 1).
type receiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []delivery
}

func newReceiver(t testing.TB, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{header: r.Header.Clone(), body: body})
		n := len(rc.got)
		rc.mu.Unlock()
		answer(n, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

func ok(int, http.ResponseWriter, *http.Request) {}

// verify is the receiver's check of docs/webhooks.md: the signature over
// "<t>.<body>" with the secret, and t within tolerance of now.
func verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("malformed signature header %q", header)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("timestamp %d outside the replay window", sec)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%s.", ts)
	mac.Write(body)
	want := mac.Sum(nil)
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, want) {
		return fmt.Errorf("signature does not match")
	}
	return nil
}

// resolver is a fake DNS: host -> addresses.
type resolver map[string][]netip.Addr

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("no such host %q", host)
}
