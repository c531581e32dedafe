package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/server"
	"github.com/riskengine/risk/server/openapi/openapitest"
)

// authFunc is a fake Authenticator.
type authFunc func(ctx context.Context, token string) (engine.Principal, error)

func (f authFunc) Authenticate(ctx context.Context, token string) (engine.Principal, error) {
	return f(ctx, token)
}

// roleKeys authenticates "<role>-key" as a key of that role, named
// "<role>-client".
var roleKeys = authFunc(func(_ context.Context, token string) (engine.Principal, error) {
	role, ok := strings.CutSuffix(token, "-key")
	if !ok || !engine.ValidRole(engine.Role(role)) {
		return engine.Principal{}, fmt.Errorf("key: %w", engine.ErrNotFound)
	}
	return engine.Principal{KeyID: "id-" + role, Name: role + "-client", Role: engine.Role(role)}, nil
})

// featuresFunc is a fake engine.FeatureSource.
type featuresFunc func(ctx context.Context, p *engine.Payment, dst []engine.FeatureValue) ([]engine.FeatureValue, error)

func (f featuresFunc) Features(ctx context.Context, p *engine.Payment, dst []engine.FeatureValue) ([]engine.FeatureValue, error) {
	return f(ctx, p, dst)
}

// edgeOptions configure an edge; the zero value is the real stack in dev
// mode with a debug log captured.
type edgeOptions struct {
	auth     server.Authenticator
	metrics  bool
	rate     server.RateLimit
	features engine.FeatureSource // replaces the store's features
	budget   time.Duration
	fallback engine.Outcome
	byMerch  map[string]engine.Outcome
	decider  server.Decider // replaces the engine
	timeout  time.Duration  // RequestTimeout
}

// edge is the real store, rules and engine (from newStack) behind a server
// configured for hardening tests, with its logs captured.
type edge struct {
	*stack
	srv     *server.Server
	engine  *engine.Engine
	metrics *server.Metrics
	url     string
	logs    *syncBuffer
}

func newEdge(tb testing.TB, o edgeOptions) *edge {
	tb.Helper()
	st := newStack(tb, tb.TempDir(), nil)
	e := &edge{stack: st, logs: &syncBuffer{}}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ecfg := engine.Config{Store: st.store, Features: st.store, Budget: o.budget, Fallback: o.fallback, FallbackByMerchant: o.byMerch, Log: log}
	if o.features != nil {
		ecfg.Features = o.features
	}
	if o.metrics {
		e.metrics = server.NewMetrics(server.MetricsConfig{StoreStats: func() server.StoreStats {
			s := st.store.Stats()
			return server.StoreStats{CacheHits: s.CacheHits, CacheMisses: s.CacheMisses, CachedWindows: s.CachedWindows, LSMBytes: s.LSMBytes, VLogBytes: s.VLogBytes, LastSeq: s.LastSeq}
		}})
		ecfg.Observer = e.metrics
		ecfg.Store = e.metrics.TimeStore(st.store)
		ecfg.Features = e.metrics.TimeFeatures(ecfg.Features)
	}
	e.engine = engine.New(ecfg)
	e.engine.SetRules(st.engine.Rules())
	var decider server.Decider = e.engine
	if o.decider != nil {
		decider = o.decider
	}
	e.srv = server.New(server.Config{
		Engine: decider, Decisions: st.store, Auth: o.auth, Log: log, Metrics: e.metrics, RateLimit: o.rate,
		RequestTimeout: o.timeout,
	})
	// Tests add their own routes under /test/; every other answer is
	// checked against the OpenAPI document.
	ts := httptest.NewServer(openapitest.Handler(tb, e.srv.Handler(), "/test/"))
	tb.Cleanup(ts.Close)
	e.url = ts.URL
	return e
}

// send makes a request with key as the bearer key ("" sends none); a
// string or []byte body is sent as is, anything else as JSON.
func (e *edge) send(key, method, path string, body any) (int, http.Header, []byte) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

// accessRecords returns the access log records written so far.
func (e *edge) accessRecords() []map[string]any {
	var out []map[string]any
	for _, rec := range e.logs.records(e.t) {
		if rec["msg"] == "access" {
			out = append(out, rec)
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// records parses the JSON log lines.
func (b *syncBuffer) records(tb testing.TB) []map[string]any {
	tb.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			tb.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

func decodeJSON[T any](tb testing.TB, data []byte) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		tb.Fatalf("decode %q: %v", data, err)
	}
	return v
}
