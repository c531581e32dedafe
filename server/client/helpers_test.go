package client_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/admin/backtest"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/rules"
	"github.com/riskengine/risk/server"
	"github.com/riskengine/risk/server/client"
	"github.com/riskengine/risk/server/openapi/openapitest"
)

const adminKey = "rk_client_test_admin_key_0000000000000000000000"

// engineServer is the engine as main wires it (decisions, feedback, the
// admin API, backtests, backup) on a real Badger, behind a real HTTP
// server whose traffic is checked against the OpenAPI document, with
// faults injected in front of POST /v1/decisions and POST
// /admin/ruleset/publish.
type engineServer struct {
	url    string
	faults *faults
}

func compileFilter(src string) (features.Filter, error) {
	p, err := rules.CompilePredicate(src)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func newEngineServer(t *testing.T) *engineServer {
	t.Helper()
	ctx := context.Background()
	store := features.New(features.Options{Dir: t.TempDir(), CompileFilter: compileFilter, FlushInterval: 50 * time.Millisecond})
	if err := store.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(context.Background()); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	lists := features.NewLists(store.KV(), nil)
	must(lists.Load())
	must(admin.LoadDefinitions(ctx, store, nil))
	names := func() []string {
		var n []string
		for _, d := range store.Definitions() {
			n = append(n, d.Name)
		}
		return n
	}
	eng := engine.New(engine.Config{Store: store, Features: store, Labels: store})
	versions := admin.NewVersions(store.KV(), nil)
	must(admin.LoadRules(versions, lists, rules.Env{Features: names(), Lists: lists}, nil, "", func(s *rules.Set) { eng.SetRules(s) }))
	audit := admin.NewAudit(store.KV(), nil)
	keys := admin.NewKeys(store.KV(), audit, nil)
	must(keys.Load())
	if _, _, err := keys.Ensure(engine.WithPrincipal(ctx, engine.Principal{Name: "test"}), adminKey, "test-admin", engine.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{Engine: eng, Decisions: store, Feedback: eng, Auth: keys})
	api := admin.New(admin.Config{DB: store.KV(), Engine: eng, Versions: versions, Lists: lists, Features: store, Audit: audit})
	must(api.Load())
	api.Register(srv.Group("/admin"), srv.Require)
	bts := backtest.New(backtest.Config{
		History: store, Versions: versions, Draft: api.Draft,
		Env: func() rules.Env { return rules.Env{Features: names(), Lists: lists} },
	})
	t.Cleanup(func() { _ = bts.Close(context.Background()) })
	backtest.Register(srv.Group("/admin"), srv.Require, bts)
	admin.RegisterBackup(srv.Group("/admin"), srv.Require, store, audit, nil)

	f := &faults{next: openapitest.Handler(t, srv.Handler()), release: make(chan struct{})}
	ts := httptest.NewServer(f)
	t.Cleanup(func() {
		close(f.release)
		ts.Close()
	})
	return &engineServer{url: ts.URL, faults: f}
}

// client returns a client of the server with cfg's settings.
func (s *engineServer) client(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	cfg.BaseURL, cfg.Key = s.url, adminKey
	if cfg.Backoff == 0 {
		cfg.Backoff = time.Millisecond
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fault is what the next request to a faulty route gets.
type fault string

const (
	pass        fault = ""
	unavailable fault = "503"
	badGateway  fault = "502"
	rateLimited fault = "429"
	hang        fault = "hang" // no answer until the client gives up
)

// faults answers the queued faults, in order, to POST /v1/decisions and
// POST /admin/ruleset/publish, then passes; it records every body sent to
// those routes.
type faults struct {
	next    http.Handler
	release chan struct{}

	mu     sync.Mutex
	queue  []fault
	always fault
	bodies []string
}

// set queues faults for the next requests; always applies once the queue
// is empty.
func (f *faults) set(always fault, queue ...fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue, f.always, f.bodies = queue, always, nil
}

// sent returns the bodies of the requests to the faulty routes.
func (f *faults) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.bodies...)
}

func (f *faults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || (r.URL.Path != "/v1/decisions" && r.URL.Path != "/admin/ruleset/publish") {
		f.next.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytesReader(body))
	f.mu.Lock()
	f.bodies = append(f.bodies, string(body))
	ft := f.always
	if len(f.queue) > 0 {
		ft, f.queue = f.queue[0], f.queue[1:]
	}
	f.mu.Unlock()
	switch ft {
	case pass:
		f.next.ServeHTTP(w, r)
	case hang:
		select {
		case <-r.Context().Done():
		case <-f.release:
		}
	case rateLimited:
		w.Header().Set("Retry-After", "0")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"code":"rate_limited","message":"over the limit"}`)
	default:
		w.Header().Set("Content-Type", "application/json")
		if ft == badGateway {
			w.WriteHeader(http.StatusBadGateway)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = io.WriteString(w, `{"code":"unavailable","message":"the service cannot answer right now"}`)
	}
}
