package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/limits"
	"github.com/riskengine/risk/rules"
	"github.com/riskengine/risk/server"
)

// fbClock is a settable clock starting at the real time, so record TTLs
// stay sensible.
type fbClock struct{ ns atomic.Int64 }

func (c *fbClock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fbClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// fbStack is the service wired as main wires it, limits and feedback
// included, on a real Badger behind a real HTTP server.
type fbStack struct {
	t      testing.TB
	engine *engine.Engine
	clock  *fbClock
	store  *features.Store
	lists  *features.Lists
	audit  *admin.Audit
	http   *httptest.Server
	tx     atomic.Int64
}

func newFBStack(t testing.TB) *fbStack {
	return newFBStackLimits(t, true)
}

// newFBStackLimits is newFBStack, without the limiter when withLimits is
// false.
func newFBStackLimits(t testing.TB, withLimits bool) *fbStack {
	t.Helper()
	ctx := context.Background()
	s := &fbStack{t: t, clock: &fbClock{}}
	s.clock.ns.Store(time.Now().UnixNano())
	opts := features.Options{Dir: t.TempDir(), CompileFilter: compileFilter, FlushInterval: 50 * time.Millisecond, Now: s.clock.now}
	if withLimits {
		opts.LimitsEntity = limits.EntityAccount
	}
	s.store = features.New(opts)
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
	s.lists = features.NewLists(s.store.KV(), s.clock.now)
	file, err := rules.ParseFile(rules.Sample())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range file.Lists {
		if _, err := s.lists.Put(features.List{Name: l.Name, Kind: l.Kind}); err != nil {
			t.Fatal(err)
		}
	}
	s.audit = admin.NewAudit(s.store.KV(), s.clock.now)
	var lim *limits.Limiter
	if withLimits {
		src, err := s.store.LimiterSources()
		if err != nil {
			t.Fatal(err)
		}
		lim, err = limits.New(src, limits.Options{
			Compile: func(src string) (limits.PaymentPredicate, error) {
				p, err := rules.CompilePaymentPredicate(src)
				if err != nil {
					return nil, err
				}
				return p, nil
			},
			Lists: s.lists, Audit: admin.LimitsAudit(s.audit), Now: s.clock.now,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := lim.Load(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for _, d := range s.store.Definitions() {
		names = append(names, d.Name)
	}
	set, err := rules.Compile(file.Spec, rules.Env{Features: names, Lists: s.lists}, 1)
	if err != nil {
		t.Fatal(err)
	}
	// A generous budget: a degraded decision under a loaded test machine
	// would answer the fallback instead of what the scenario checks.
	cfg := engine.Config{Store: s.store, Features: s.store, Labels: s.store, Now: s.clock.now, Budget: 5 * time.Second}
	if withLimits {
		cfg.Limiter, cfg.Trust = lim, lim
	}
	eng := engine.New(cfg)
	eng.SetRules(set)
	s.engine = eng
	srv := server.New(server.Config{Engine: eng, Decisions: s.store, Feedback: eng})
	if lim != nil {
		admin.RegisterLimits(srv.Group("/admin"), srv.Require, lim)
	}
	admin.RegisterStats(srv.Group("/admin"), srv.Require, s.store, s.clock.now)
	s.http = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		s.http.Close()
		if err := s.store.Close(context.Background()); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// call sends a JSON request and decodes the answer into out: stack.do on
// this server.
func (s *fbStack) call(method, path string, body, out any) int {
	s.t.Helper()
	return (&stack{t: s.t, http: s.http}).do(method, path, body, out)
}

// pay is a payment by an account with years of history, paying with its
// own card from its own device in its own country.
func (s *fbStack) pay(account, card string, amount int64) map[string]any {
	return map[string]any{
		"transaction_id": fmt.Sprintf("tx_fb_%d", s.tx.Add(1)),
		"amount":         amount,
		"currency":       "USD",
		"account":        map[string]any{"id": account, "email": account + "@example.com", "created_at": "2024-01-02T00:00:00Z", "country": "US"},
		"card":           map[string]any{"fingerprint": card, "bin": "411111", "country": "US"},
		"device":         map[string]any{"id": "dev_" + account, "ip": "203.0.113.9", "ip_country": "US"},
		"merchant":       map[string]any{"id": "m_1", "mcc": "5999", "country": "US"},
	}
}

type fbDecision struct {
	DecisionID    string `json:"decision_id"`
	TransactionID string `json:"transaction_id"`
	Decision      string `json:"decision"`
	Reasons       []struct {
		Rule string `json:"rule"`
		Code string `json:"code"`
	} `json:"reasons"`
	Limits struct {
		Entity         string   `json:"entity"`
		SingleMax      int64    `json:"single_max"`
		DailyRemaining int64    `json:"daily_remaining"`
		Trust          float64  `json:"trust"`
		Policy         string   `json:"policy"`
		Segment        string   `json:"segment"`
		BaseSingleMax  int64    `json:"base_single_max"`
		Adjustments    []string `json:"adjustments"`
	} `json:"limits"`
	Labels []struct {
		Label  string `json:"label"`
		Source string `json:"source"`
	} `json:"labels"`
}

func (d fbDecision) codes() string {
	var c []string
	for _, r := range d.Reasons {
		c = append(c, r.Code)
	}
	return strings.Join(c, ",")
}

func (s *fbStack) decide(body map[string]any) fbDecision {
	s.t.Helper()
	var d fbDecision
	if code := s.call("POST", "/v1/decisions", body, &d); code != http.StatusOK {
		s.t.Fatalf("POST /v1/decisions = %d", code)
	}
	return d
}

type fbFeedback struct {
	DecisionID string `json:"decision_id"`
	Added      bool   `json:"added"`
	Labels     []struct {
		Label string `json:"label"`
	} `json:"labels"`
	Effects struct {
		Applied     bool     `json:"applied"`
		Entity      string   `json:"entity"`
		TrustBefore *float64 `json:"trust_before"`
		TrustAfter  *float64 `json:"trust_after"`
		Blocked     []struct {
			List  string `json:"list"`
			Value string `json:"value"`
		} `json:"blocked"`
	} `json:"effects"`
}

func (s *fbStack) feedback(path string, body map[string]any) fbFeedback {
	s.t.Helper()
	var f fbFeedback
	if code := s.call("POST", path, body, &f); code != http.StatusOK {
		s.t.Fatalf("POST %s = %d", path, code)
	}
	return f
}
