package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
	"github.com/riskengine/risk/server"
	"github.com/riskengine/risk/server/openapi/openapitest"
)

// clock is the real time plus an offset tests move forward.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// keys is a fake Authenticator: token -> principal.
type keys map[string]engine.Principal

func (k keys) Authenticate(_ context.Context, token string) (engine.Principal, error) {
	if p, ok := k[token]; ok {
		return p, nil
	}
	return engine.Principal{}, fmt.Errorf("key: %w", engine.ErrNotFound)
}

// harness is the service wired as main wires it, on a real Badger in a
// temporary directory, behind a real HTTP server.
type harness struct {
	tb       testing.TB
	clock    *clock
	store    *features.Store
	lists    *features.Lists
	engine   *engine.Engine
	versions *admin.Versions
	api      *admin.API
	http     *httptest.Server
	token    string // sent as the bearer key when not empty
}

type harnessOptions struct {
	auth keys // nil: dev mode, every request is the admin "dev"
}

func compileFilter(src string) (features.Filter, error) {
	p, err := rules.CompilePredicate(src)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// newHarness starts the service with the bundled sample features, lists and
// rules (published as version 1).
func newHarness(tb testing.TB, opts ...harnessOptions) *harness {
	tb.Helper()
	var o harnessOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	ctx := context.Background()
	h := &harness{tb: tb, clock: &clock{}}
	h.store = features.New(features.Options{Dir: tb.TempDir(), CompileFilter: compileFilter, FlushInterval: 50 * time.Millisecond})
	if err := h.store.Open(ctx); err != nil {
		tb.Fatal(err)
	}
	defs, err := features.ParseDefinitions(features.Sample())
	if err != nil {
		tb.Fatal(err)
	}
	if err := h.store.SetDefinitions(ctx, defs); err != nil {
		tb.Fatal(err)
	}
	h.lists = features.NewLists(h.store.KV(), h.clock.Now)
	if err := h.lists.Load(); err != nil {
		tb.Fatal(err)
	}
	file, err := rules.ParseFile(rules.Sample())
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range file.Lists {
		if _, err := h.lists.Put(features.List{Name: l.Name, Kind: l.Kind, Author: "startup"}); err != nil {
			tb.Fatal(err)
		}
		for _, v := range l.Items {
			if _, err := h.lists.AddItems(l.Name, []features.Item{{Value: v, Author: "startup"}}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	// A generous budget: a decision degraded by a loaded test machine
	// would change outcomes the tests assert.
	h.engine = engine.New(engine.Config{Store: h.store, Features: h.store, Budget: 5 * time.Second})
	h.versions = admin.NewVersions(h.store.KV(), nil)
	env := rules.Env{Features: names(h.store.Definitions()), Lists: h.lists}
	if _, err := h.versions.Publish(file.Spec, env, "startup", "sample", func(s *rules.Set) { h.engine.SetRules(s) }); err != nil {
		tb.Fatal(err)
	}
	cfg := server.Config{Engine: h.engine, Decisions: h.store}
	if o.auth != nil {
		cfg.Auth = o.auth
	}
	srv := server.New(cfg)
	h.api = admin.New(admin.Config{
		DB: h.store.KV(), Engine: h.engine, Versions: h.versions, Lists: h.lists, Features: h.store, Now: h.clock.Now,
	})
	if err := h.api.Load(); err != nil {
		tb.Fatal(err)
	}
	h.api.Register(srv.Group("/admin"), srv.Require)
	admin.RegisterDryRun(srv.Group("/admin"), srv.Require, admin.NewDryRun(admin.DryRunConfig{
		Decisions: h.store, Features: h.store, Draft: h.api.Draft, Now: h.clock.Now,
		Env: func() rules.Env { return rules.Env{Features: names(h.store.Definitions()), Lists: h.lists} },
	}))
	h.http = httptest.NewServer(openapitest.Handler(tb, srv.Handler()))
	tb.Cleanup(func() {
		h.http.Close()
		if err := h.store.Close(context.Background()); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return h
}

func names(defs []features.Definition) []string {
	out := make([]string, len(defs))
	for i, d := range defs {
		out[i] = d.Name
	}
	return out
}

// do sends a request (a string or []byte body as is, anything else as
// JSON) and decodes a JSON answer into out when out is not nil.
func (h *harness) do(method, path string, body any, out any) int {
	h.tb.Helper()
	status, data := h.raw(method, path, body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			h.tb.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return status
}

// raw sends a request and returns the status and body.
func (h *harness) raw(method, path string, body any) (int, []byte) {
	h.tb.Helper()
	status, data, err := h.send(method, path, body)
	if err != nil {
		h.tb.Fatal(err)
	}
	return status, data
}

// send is raw without failing the test, for other goroutines.
func (h *harness) send(method, path string, body any) (int, []byte, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewBufferString(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.http.URL+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// must sends a request and fails the test unless the status is want.
func (h *harness) must(want int, method, path string, body any, out any) {
	h.tb.Helper()
	status, data := h.raw(method, path, body)
	if status != want {
		h.tb.Fatalf("%s %s = %d %s, want %d", method, path, status, data, want)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			h.tb.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
}

// apiError is the server's error body.
type apiError struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Field   string        `json:"field"`
	Errors  []rules.Error `json:"errors"`
}

type decision struct {
	Decision       string `json:"decision"`
	RulesetVersion int64  `json:"ruleset_version"`
	Reasons        []struct {
		Rule string `json:"rule"`
		Code string `json:"code"`
	} `json:"reasons"`
}

var txSeq atomic.Int64

// payment returns a valid decision request that the sample rules allow.
func payment() map[string]any {
	return map[string]any{
		"transaction_id": "tx_" + strconv.FormatInt(time.Now().UnixNano(), 36) + "_" + strconv.FormatInt(txSeq.Add(1), 36),
		"amount":         12999,
		"currency":       "USD",
		"account":        map[string]any{"id": "acc_42", "email": "a@example.com", "created_at": "2025-01-02T00:00:00Z", "country": "US"},
		"card":           map[string]any{"fingerprint": "fp_9a", "bin": "411111", "country": "US"},
		"device":         map[string]any{"id": "dev_7", "ip": "203.0.113.7", "ip_country": "US"},
		"merchant":       map[string]any{"id": "m_1", "mcc": "5999", "country": "US"},
	}
}

// with sets a dotted path of a payment.
func with(p map[string]any, path string, v any) map[string]any {
	cur := p
	for {
		head, rest, ok := cut(path)
		if !ok {
			cur[path] = v
			return p
		}
		cur = cur[head].(map[string]any)
		path = rest
	}
}

func cut(path string) (string, string, bool) {
	for i := range path {
		if path[i] == '.' {
			return path[:i], path[i+1:], true
		}
	}
	return path, "", false
}

// decide posts a decision and fails the test unless it is answered.
func (h *harness) decide(p map[string]any) decision {
	h.tb.Helper()
	var d decision
	h.must(http.StatusOK, http.MethodPost, "/v1/decisions", p, &d)
	return d
}

// liveVersion is the version the engine decides with now.
func (h *harness) liveVersion() int64 { return h.engine.Rules().Version() }

// errorsOf decodes a 422 answer and returns its error list.
func (h *harness) errorsOf(method, path string, body any) []rules.Error {
	h.tb.Helper()
	var e apiError
	h.must(http.StatusUnprocessableEntity, method, path, body, &e)
	if e.Code != "unprocessable" {
		h.tb.Errorf("code = %q, want unprocessable", e.Code)
	}
	return e.Errors
}

// jsonText is v as indented JSON, for failure messages.
func jsonText(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
