package backtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/admin/backtest"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
	"github.com/riskengine/risk/server"
	"github.com/riskengine/risk/server/openapi/openapitest"
)

var t0 = time.Date(2026, 10, 5, 9, 0, 0, 0, time.UTC)

func compileFilter(src string) (features.Filter, error) {
	p, err := rules.CompilePredicate(src)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// live is a real decision path on a real Badger store in a temporary
// directory, with a clock the test moves.
type live struct {
	store    *features.Store
	engine   *engine.Engine
	versions *admin.Versions
	lists    *features.Lists
	clock    atomic.Int64 // unix nanoseconds
}

// newLive opens a store with defs and makes spec the live rule set
// (published as version 1).
func newLive(tb testing.TB, defs []features.Definition, spec rules.Spec) *live {
	tb.Helper()
	ctx := context.Background()
	l := &live{}
	l.clock.Store(t0.UnixNano())
	now := func() time.Time { return time.Unix(0, l.clock.Load()).UTC() }
	l.store = features.New(features.Options{Dir: tb.TempDir(), CompileFilter: compileFilter, Now: now})
	if err := l.store.Open(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.store.Close(context.Background()) })
	if err := l.store.SetDefinitions(ctx, defs); err != nil {
		tb.Fatal(err)
	}
	l.lists = features.NewLists(l.store.KV(), now)
	if err := l.lists.Load(); err != nil {
		tb.Fatal(err)
	}
	l.engine = engine.New(engine.Config{Store: l.store, Features: l.store, Now: now, Budget: time.Second})
	l.versions = admin.NewVersions(l.store.KV(), now)
	if _, err := l.versions.Publish(spec, l.env(), "test", "", func(s *rules.Set) { l.engine.SetRules(s) }); err != nil {
		tb.Fatal(err)
	}
	return l
}

func (l *live) env() rules.Env {
	defs := l.store.Definitions()
	names := make([]string, len(defs))
	for i, d := range defs {
		names[i] = d.Name
	}
	return rules.Env{Features: names, Lists: l.lists}
}

// decide decides p with the clock set to at.
func (l *live) decide(tb testing.TB, at time.Time, p engine.Payment) *engine.Record {
	tb.Helper()
	l.clock.Store(at.UnixNano())
	if p.OccurredAt.IsZero() {
		p.OccurredAt = at
	}
	if p.Currency == "" {
		p.Currency = "USD"
	}
	rec, _, err := l.engine.Decide(context.Background(), p, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return rec
}

// label attaches a feedback label to a stored decision.
func (l *live) label(tb testing.TB, rec *engine.Record, label string) {
	tb.Helper()
	if _, _, err := l.store.AddLabel(context.Background(), rec.ID, engine.Label{Label: label, CreatedAt: t0}); err != nil {
		tb.Fatal(err)
	}
}

// backtests returns Backtests over l, closed when the test ends.
func (l *live) backtests(tb testing.TB, mod ...func(*backtest.Config)) *backtest.Backtests {
	tb.Helper()
	cfg := backtest.Config{History: l.store, Versions: l.versions, Env: l.env}
	for _, m := range mod {
		m(&cfg)
	}
	b := backtest.New(cfg)
	tb.Cleanup(func() {
		if err := b.Close(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return b
}

// keys authenticates the bearer token as the role it names.
type keys struct{}

func (keys) Authenticate(_ context.Context, token string) (engine.Principal, error) {
	if !engine.ValidRole(engine.Role(token)) {
		return engine.Principal{}, engine.ErrNotFound
	}
	return engine.Principal{Name: token + "-key", Role: engine.Role(token)}, nil
}

// api is the real HTTP server with the backtest routes registered as
// main.go registers them.
type api struct{ h http.Handler }

func newAPI(tb testing.TB, b *backtest.Backtests, l *live) *api {
	srv := server.New(server.Config{Engine: l.engine, Decisions: l.store, Auth: keys{}})
	backtest.Register(srv.Group("/admin"), srv.Require, b)
	return &api{h: openapitest.Handler(tb, srv.Handler())}
}

// do sends a request as role and decodes the JSON answer into out (when
// not nil). It returns the status.
func (a *api) do(tb testing.TB, role engine.Role, method, path, body string, out any) int {
	tb.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+string(role))
	rr := httptest.NewRecorder()
	a.h.ServeHTTP(rr, req)
	if out != nil {
		if err := json.Unmarshal(rr.Body.Bytes(), out); err != nil {
			tb.Fatalf("%s %s: decode %q: %v", method, path, rr.Body.String(), err)
		}
	}
	return rr.Code
}

// wait polls a backtest until it is final and returns its status.
func (a *api) wait(tb testing.TB, id string) backtest.Status {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st backtest.Status
		if code := a.do(tb, engine.RoleAnalyst, http.MethodGet, "/admin/backtests/"+id, "", &st); code != http.StatusOK {
			tb.Fatalf("GET backtest %s: status %d", id, code)
		}
		switch st.State {
		case backtest.StateDone, backtest.StateCancelled, backtest.StateFailed:
			return st
		}
		if time.Now().After(deadline) {
			tb.Fatalf("backtest %s still %s", id, st.State)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// jsonOf renders v as indented JSON, for readable comparisons.
func jsonOf(tb testing.TB, v any) string {
	tb.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		tb.Fatal(err)
	}
	return buf.String()
}

func ptr(f float64) *float64 { return &f }
