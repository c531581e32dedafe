package review_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/admin/review"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/limits"
	"github.com/riskengine/risk/rules"
	"github.com/riskengine/risk/server"
	"github.com/riskengine/risk/server/openapi/openapitest"
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

var testKeys = keys{
	"ana": engine.RoleAnalyst, "bob": engine.RoleAnalyst, "carl": engine.RoleAnalyst, "dora": engine.RoleAnalyst,
	"aud": engine.RoleAuditor, "gw": engine.RoleGateway, "adm": engine.RoleAdmin,
}

const claimTTL = 10 * time.Minute

// reviewRules is the sample rule set plus a review rule: USD payments of
// 500.00 or more go to review.
func reviewRules(tb testing.TB) rules.File {
	tb.Helper()
	f, err := rules.ParseFile(rules.Sample())
	if err != nil {
		tb.Fatal(err)
	}
	f.Rules = append(f.Rules, rules.Rule{ID: "big_review", Expression: `amount >= 50000 && currency == "USD"`, Action: engine.ActionReview})
	return f
}

// stack is the service wired as main wires it (engine with limits and
// feedback, lists, audit, the review routes) on a real Badger in dir,
// behind a real HTTP server. The queue's background reader is not started:
// tests call sync, so nothing depends on timing.
type stack struct {
	t      testing.TB
	dir    string
	clock  *clock
	store  *features.Store
	lists  *features.Lists
	audit  *admin.Audit
	engine *engine.Engine
	queue  *review.Queue
	cases  *review.Cases
	http   *httptest.Server
	opened []review.Item // every item OnOpen reported
	tx     atomic.Int64
}

func newStack(t testing.TB) *stack {
	return openStack(t, t.TempDir(), &clock{})
}

func openStack(t testing.TB, dir string, c *clock) *stack {
	t.Helper()
	ctx := context.Background()
	if c.ns.Load() == 0 {
		c.ns.Store(time.Now().UnixNano())
	}
	s := &stack{t: t, dir: dir, clock: c}
	s.store = features.New(features.Options{Dir: dir, CompileFilter: compileFilter, FlushInterval: 50 * time.Millisecond, Now: c.now, LimitsEntity: limits.EntityAccount})
	if err := s.store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defs, err := features.ParseDefinitions(features.Sample())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.store.SetDefinitions(ctx, defs); err != nil {
		t.Fatal(err)
	}
	s.lists = features.NewLists(s.store.KV(), c.now)
	if err := s.lists.Load(); err != nil {
		t.Fatal(err)
	}
	file := reviewRules(t)
	for _, l := range file.Lists {
		if _, err := s.lists.Put(features.List{Name: l.Name, Kind: l.Kind}); err != nil {
			t.Fatal(err)
		}
	}
	s.audit = admin.NewAudit(s.store.KV(), c.now)
	src, err := s.store.LimiterSources()
	if err != nil {
		t.Fatal(err)
	}
	lim, err := limits.New(src, limits.Options{Compile: compilePredicate, Lists: s.lists, Audit: admin.LimitsAudit(s.audit), Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := lim.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range s.store.Definitions() {
		names = append(names, d.Name)
	}
	set, err := rules.Compile(file.Spec, rules.Env{Features: names, Lists: s.lists}, 1)
	if err != nil {
		t.Fatal(err)
	}
	// A generous budget: a degraded decision on a loaded machine would
	// change what the scenarios check.
	s.engine = engine.New(engine.Config{Store: s.store, Features: s.store, Labels: s.store, Limiter: lim, Trust: lim, Now: c.now, Budget: 5 * time.Second})
	s.engine.SetRules(set)
	cfg := review.Config{
		DB: s.store.KV(), Decisions: s.store, Feedback: s.engine, Lists: s.lists, Audit: s.audit,
		ClaimTTL: claimTTL, Retention: 30 * 24 * time.Hour, Now: c.now,
		OnOpen: func(_ context.Context, it review.Item) { s.opened = append(s.opened, it) },
	}
	s.queue, s.cases = review.NewQueue(cfg), review.NewCases(cfg)
	if err := s.queue.Load(ctx); err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{Engine: s.engine, Decisions: s.store, Feedback: s.engine, Auth: testKeys})
	review.Register(srv.Group("/admin"), srv.Require, s.queue, s.cases)
	s.http = httptest.NewServer(openapitest.Handler(t, srv.Handler()))
	t.Cleanup(func() {
		s.http.Close()
		if s.store != nil {
			if err := s.store.Close(context.Background()); err != nil {
				t.Errorf("close store: %v", err)
			}
		}
	})
	return s
}

// close closes the HTTP server and the store, as a killed process leaves
// them: nothing of the queue runs on the way out.
func (s *stack) close() {
	s.http.Close()
	if err := s.store.Close(context.Background()); err != nil {
		s.t.Fatal(err)
	}
	s.store = nil
}

func compileFilter(src string) (features.Filter, error) {
	p, err := rules.CompilePredicate(src)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func compilePredicate(src string) (limits.PaymentPredicate, error) {
	p, err := rules.CompilePaymentPredicate(src)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// sync reads the decision log now.
func (s *stack) sync() int {
	s.t.Helper()
	n, err := s.queue.Sync(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// call sends body as JSON with key as the bearer token and decodes the
// answer into out; it returns the status.
func (s *stack) call(key, method, path string, body, out any) int {
	s.t.Helper()
	code, data := s.raw(key, method, path, body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return code
}

func (s *stack) raw(key, method, path string, body any) (int, []byte) {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.http.URL+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.StatusCode, data
}

// must is call that fails the test unless the status is want.
func (s *stack) must(want int, key, method, path string, body, out any) {
	s.t.Helper()
	if code, data := s.raw(key, method, path, body); code != want {
		s.t.Fatalf("%s %s as %s = %d, want %d: %s", method, path, key, code, want, data)
	} else if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
}

// pay is a payment by an established account with its own card, device
// and country.
func (s *stack) pay(account, card string, amount int64, currency string) map[string]any {
	return map[string]any{
		"transaction_id": fmt.Sprintf("tx_rv_%d", s.tx.Add(1)),
		"amount":         amount,
		"currency":       currency,
		"account":        map[string]any{"id": account, "email": account + "@example.com", "created_at": "2024-01-02T00:00:00Z", "country": "US"},
		"card":           map[string]any{"fingerprint": card, "bin": "411111", "country": "US"},
		"device":         map[string]any{"id": "dev_" + account, "ip": "203.0.113.9", "ip_country": "US"},
		"merchant":       map[string]any{"id": "m_1", "mcc": "5999", "country": "US"},
	}
}

type decisionOut struct {
	DecisionID string `json:"decision_id"`
	Decision   string `json:"decision"`
	Review     bool   `json:"review"`
	Reasons    []struct {
		Code string `json:"code"`
	} `json:"reasons"`
	Limits struct {
		SingleMax int64   `json:"single_max"`
		Trust     float64 `json:"trust"`
	} `json:"limits"`
}

func (d decisionOut) codes() string {
	var c []string
	for _, r := range d.Reasons {
		c = append(c, r.Code)
	}
	return strings.Join(c, ",")
}

func (s *stack) decide(body map[string]any) decisionOut {
	s.t.Helper()
	var d decisionOut
	s.must(http.StatusOK, "gw", "POST", "/v1/decisions", body, &d)
	return d
}

type itemOut struct {
	review.Item
	AgeSeconds int64 `json:"age_seconds"`
}
