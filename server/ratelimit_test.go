package server_test

import (
	"net/http"
	"testing"

	"github.com/riskengine/risk/server"
)

// TestRateLimitPerKey: each key has its own bucket; over it a key gets 429
// with Retry-After, and other keys and open routes are not affected.
func TestRateLimitPerKey(t *testing.T) {
	// 0.5 per second: a spent token takes 2 s to come back, far longer
	// than this test takes.
	e := newEdge(t, edgeOptions{auth: roleKeys, rate: server.RateLimit{PerSecond: 0.5, Burst: 3}})
	for i := range 3 {
		if code, _, body := e.send("auditor-key", "GET", "/v1/decisions", nil); code != http.StatusOK {
			t.Fatalf("request %d within the burst = %d %s", i+1, code, body)
		}
	}
	code, h, body := e.send("auditor-key", "GET", "/v1/decisions", nil)
	if code != http.StatusTooManyRequests {
		t.Fatalf("request over the burst = %d %s, want 429", code, body)
	}
	if got := h.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2", got)
	}
	if e := decodeJSON[apiError](t, body); e.Code != "rate_limited" || e.RequestID == "" {
		t.Errorf("429 body = %s", body)
	}
	if code, _, _ := e.send("analyst-key", "GET", "/v1/decisions", nil); code != http.StatusOK {
		t.Errorf("another key = %d, want 200", code)
	}
	if code, _, _ := e.send("", "GET", "/healthz", nil); code != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", code)
	}
	// Requests without a valid key have no bucket and are refused as 401.
	if code, _, _ := e.send("bogus", "GET", "/v1/decisions", nil); code != http.StatusUnauthorized {
		t.Errorf("bad key = %d, want 401", code)
	}
}
