package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
	"github.com/riskengine/risk/server"
	"github.com/riskengine/risk/server/openapi/openapitest"
)

// stack is a real engine behind a real HTTP server, on a real Badger.
type stack struct {
	t      testing.TB
	dir    string
	store  *features.Store
	lists  *features.Lists
	engine *engine.Engine
	srv    *server.Server
	http   *httptest.Server
}

func compileFilter(src string) (features.Filter, error) {
	p, err := rules.CompilePredicate(src)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// newStack opens a stack on dir with the bundled sample features and rules
// (or spec when given).
func newStack(tb testing.TB, dir string, spec *rules.Spec) *stack {
	tb.Helper()
	s := &stack{t: tb, dir: dir}
	s.store = features.New(features.Options{Dir: dir, CompileFilter: compileFilter, FlushInterval: 50 * time.Millisecond})
	if err := s.store.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	if !s.store.HasStoredDefinitions() {
		defs, err := features.ParseDefinitions(features.Sample())
		if err != nil {
			tb.Fatal(err)
		}
		if err := s.store.SetDefinitions(context.Background(), defs); err != nil {
			tb.Fatal(err)
		}
	}
	s.lists = features.NewLists(s.store.KV(), nil)
	if err := s.lists.Load(); err != nil {
		tb.Fatal(err)
	}
	file, err := rules.ParseFile(rules.Sample())
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range file.Lists {
		if _, err := s.lists.Get(l.Name); err == nil {
			continue
		}
		if _, err := s.lists.Put(features.List{Name: l.Name, Kind: l.Kind}); err != nil {
			tb.Fatal(err)
		}
		for _, v := range l.Items {
			if _, err := s.lists.AddItems(l.Name, []features.Item{{Value: v}}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if spec == nil {
		spec = &file.Spec
	}
	var names []string
	for _, d := range s.store.Definitions() {
		names = append(names, d.Name)
	}
	set, err := rules.Compile(*spec, rules.Env{Features: names, Lists: s.lists}, 1)
	if err != nil {
		tb.Fatal(err)
	}
	s.engine = engine.New(engine.Config{Store: s.store, Features: s.store})
	s.engine.SetRules(set)
	s.srv = server.New(server.Config{Engine: s.engine, Decisions: s.store})
	s.http = httptest.NewServer(openapitest.Handler(tb, s.srv.Handler()))
	tb.Cleanup(s.close)
	return s
}

func (s *stack) close() {
	if s.http == nil {
		return
	}
	s.http.Close()
	s.http = nil
	if err := s.store.Close(context.Background()); err != nil {
		s.t.Errorf("close store: %v", err)
	}
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (s *stack) do(method, path string, body any, out any) int {
	s.t.Helper()
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
			s.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.http.URL+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

type decision struct {
	DecisionID     string `json:"decision_id"`
	TransactionID  string `json:"transaction_id"`
	Decision       string `json:"decision"`
	Score          int    `json:"score"`
	Reasons        []struct{ Rule, Code, Message string }
	Limits         map[string]any `json:"limits"`
	RulesetVersion int64          `json:"ruleset_version"`
	Degraded       bool           `json:"degraded"`
	EvaluatedAt    time.Time      `json:"evaluated_at"`
	Replayed       bool           `json:"replayed"`
}

type apiError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field"`
	RequestID string `json:"request_id"`
}

// payment returns a valid request body with a unique-per-test transaction.
func payment(tx string) map[string]any {
	return map[string]any{
		"transaction_id": tx,
		"occurred_at":    time.Now().UTC().Format(time.RFC3339Nano),
		"amount":         12999,
		"currency":       "USD",
		"account":        map[string]any{"id": "acc_42", "email": "a@example.com", "created_at": "2026-01-02T00:00:00Z", "country": "US"},
		"card":           map[string]any{"fingerprint": "fp_9a", "bin": "411111", "country": "US"},
		"device":         map[string]any{"id": "dev_7", "ip": "203.0.113.7", "ip_country": "US"},
		"merchant":       map[string]any{"id": "m_1", "mcc": "5999", "country": "US"},
		"attributes":     map[string]any{"channel": "web", "items": 3},
	}
}

func set(m map[string]any, path string, v any) map[string]any {
	cur := m
	for {
		i := indexByte(path, '.')
		if i < 0 {
			if v == nil {
				delete(cur, path)
			} else {
				cur[path] = v
			}
			return m
		}
		cur = cur[path[:i]].(map[string]any)
		path = path[i+1:]
	}
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) next() int { return int(c.n.Add(1)) }
