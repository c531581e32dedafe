package server_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/server"
)

// scrape returns the /metrics text of e, fetched as an admin.
func scrape(tb testing.TB, e *edge) string {
	tb.Helper()
	key := ""
	if e.srv != nil {
		key = "admin-key"
	}
	code, h, body := e.send(key, "GET", "/metrics", nil)
	if code != http.StatusOK {
		tb.Fatalf("GET /metrics = %d %s", code, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		tb.Errorf("Content-Type = %q", ct)
	}
	return string(body)
}

func TestMetrics(t *testing.T) {
	e := newEdge(t, edgeOptions{auth: roleKeys, metrics: true})
	if _, err := e.lists.AddItems("blocked_cards", []features.Item{{Value: "fp_stolen"}}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	first := payment("t_m1")
	for i, body := range []map[string]any{
		first,
		payment("t_m2"),
		set(payment("t_m3"), "card.fingerprint", "fp_stolen"),
		set(payment("t_m4"), "device.ip_country", "FR"),
	} {
		code, _, data := e.send("gateway-key", "POST", "/v1/decisions", body)
		if code != http.StatusOK {
			t.Fatalf("decision %d: %d %s", i, code, data)
		}
		ids = append(ids, decodeJSON[decision](t, data).DecisionID)
	}
	e.send("gateway-key", "POST", "/v1/decisions", first)                         // a replay: not a new decision
	e.send("gateway-key", "POST", "/v1/decisions", `{"amount": "x"}`)             // 400
	e.send("auditor-key", "GET", "/v1/decisions/"+ids[0], nil)                    // 200
	e.send("auditor-key", "GET", "/v1/decisions/"+ids[1], nil)                    // 200, same route
	e.send("auditor-key", "GET", "/v1/decisions/dec_nope", nil)                   // 404
	e.send("gateway-key", "BREW", "/v1/decisions", nil)                           // unknown method
	e.send("gateway-key", "GET", "/nowhere/"+strings.Repeat("x", 20), nil)        // unmatched
	if code, _, _ := e.send("gateway-key", "GET", "/metrics", nil); code != 403 { // only metrics and admin keys
		t.Errorf("gateway key on /metrics = %d, want 403", code)
	}
	if code, _, _ := e.send("metrics-key", "GET", "/metrics", nil); code != 200 {
		t.Errorf("metrics key on /metrics = %d, want 200", code)
	}

	m := scrape(t, e)
	for _, want := range []string{
		`risk_decisions_total{outcome="allow"} 2`,
		`risk_decisions_total{outcome="challenge"} 1`,
		`risk_decisions_total{outcome="deny"} 1`,
		`risk_decision_duration_seconds_count 4`,
		`risk_rule_hits_total{mode="active",rule="blocked_card"} 1`,
		`risk_rule_hits_total{mode="active",rule="card_country_mismatch"} 1`,
		// The replay is evaluated too: the store finds the duplicate when
		// it commits (engine.DuplicateError), with no lookup beforehand.
		`risk_store_duration_seconds_count{op="commit"} 5`,
		`risk_store_duration_seconds_count{op="features"} 5`,
		`risk_http_requests_total{method="POST",route="/v1/decisions",status="200"} 5`,
		`risk_http_requests_total{method="POST",route="/v1/decisions",status="400"} 1`,
		`risk_http_requests_total{method="GET",route="/v1/decisions/:id",status="200"} 2`,
		`risk_http_requests_total{method="GET",route="/v1/decisions/:id",status="404"} 1`,
		`risk_http_requests_total{method="GET",route="/metrics",status="403"} 1`,
		`risk_http_requests_total{method="other",route="/v1/decisions",status="405"} 1`,
		`risk_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`risk_http_request_duration_seconds_count{method="POST",route="/v1/decisions"} 6`,
		`risk_decision_last_seq 4`,
		`risk_feature_cache_misses_total `,
		`risk_feature_cache_hit_ratio `,
		`risk_feature_cached_windows `,
		`risk_badger_lsm_bytes `,
		`risk_badger_vlog_bytes `,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Routes are patterns: no series per decision id or raw path.
	if strings.Contains(m, ids[0]) || strings.Contains(m, "nowhere") || strings.Contains(m, "BREW") {
		t.Error("metrics hold a raw path or method")
	}
	if regexp.MustCompile(`risk_rule_errors_total\{`).MatchString(m) {
		t.Error("rule errors counted where no rule failed")
	}
}

// TestMetricsInstancesAreIndependent: every Metrics has its own registry,
// so two servers in one process (or two tests) never share counts.
func TestMetricsInstancesAreIndependent(t *testing.T) {
	a := server.NewMetrics(server.MetricsConfig{})
	b := server.NewMetrics(server.MetricsConfig{})
	if a.Registry() == b.Registry() {
		t.Fatal("instances share a registry")
	}
}

// BenchmarkObserveDecision is the metrics cost added to every decision: a
// record of 50 rules, 5 of them matched.
func BenchmarkObserveDecision(b *testing.B) {
	m := server.NewMetrics(server.MetricsConfig{})
	rec := &engine.Record{Decision: engine.Decision{Outcome: engine.Challenge}}
	for i := range 50 {
		rec.Rules = append(rec.Rules, engine.RuleResult{RuleInfo: &engine.RuleInfo{ID: fmt.Sprintf("r%d", i), Mode: engine.ModeActive}, Matched: i%10 == 0})
	}
	b.ResetTimer()
	for b.Loop() {
		m.ObserveDecision(rec, 3*time.Millisecond)
	}
	b.StopTimer()
	if !strings.Contains(scrapeRegistry(b, m), `risk_rule_hits_total{mode="active",rule="r10"}`) {
		b.Fatal("hits not counted")
	}
}

func scrapeRegistry(tb testing.TB, m *server.Metrics) string {
	tb.Helper()
	rr := httptest.NewRecorder()
	m.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	return rr.Body.String()
}

func TestBuildInfoMetric(t *testing.T) {
	m := server.NewMetrics(server.MetricsConfig{Build: server.BuildInfo{Version: "v1.2.3", Commit: "abc123", GoVersion: "go1.99"}})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	want := `risk_build_info{commit="abc123",go_version="go1.99",version="v1.2.3"} 1`
	if !strings.Contains(rec.Body.String(), want+"\n") {
		t.Errorf("/metrics lacks %s", want)
	}
	rec = httptest.NewRecorder()
	server.NewMetrics(server.MetricsConfig{}).Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if strings.Contains(rec.Body.String(), "risk_build_info") {
		t.Error("risk_build_info exported without a build")
	}
}
