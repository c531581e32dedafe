package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

// deciderFunc is a fake server.Decider.
type deciderFunc func(ctx context.Context, p engine.Payment, raw []byte) (*engine.Record, bool, error)

func (f deciderFunc) Decide(ctx context.Context, p engine.Payment, raw []byte) (*engine.Record, bool, error) {
	return f(ctx, p, raw)
}

// TestPanicBecomes500: a panic in a handler is a 500 with the request id,
// logged with its stack, and the server keeps serving.
func TestPanicBecomes500(t *testing.T) {
	boom := deciderFunc(func(context.Context, engine.Payment, []byte) (*engine.Record, bool, error) {
		var m map[string]int
		m["boom"]++ // nil map: a real bug, not a string panic
		return nil, false, nil
	})
	e := newEdge(t, edgeOptions{decider: boom})
	e.srv.Group("/test").GET("/panic", func(echo.Context) error { panic("handler bug") }, e.srv.Require(engine.RoleAdmin))

	for _, tt := range []struct{ method, path string }{{"POST", "/v1/decisions"}, {"GET", "/test/panic"}} {
		t.Run(tt.path, func(t *testing.T) {
			code, h, data := e.send("", tt.method, tt.path, payment("t_panic"))
			if code != http.StatusInternalServerError {
				t.Fatalf("status %d %s, want 500", code, data)
			}
			body := decodeJSON[apiError](t, data)
			if body.Code != "internal" || body.RequestID == "" || body.RequestID != h.Get("X-Request-Id") {
				t.Errorf("body %s, X-Request-Id %q", data, h.Get("X-Request-Id"))
			}
			if strings.Contains(string(data), "nil map") || strings.Contains(string(data), "handler bug") {
				t.Errorf("the client sees the panic: %s", data)
			}
			var logged bool
			for _, rec := range e.logs.records(t) {
				if rec["msg"] == "request panicked" && rec["request_id"] == body.RequestID {
					logged = strings.Contains(rec["stack"].(string), "panic_test.go")
				}
			}
			if !logged {
				t.Errorf("no panic record with a stack for request %s in\n%s", body.RequestID, e.logs.String())
			}
		})
	}
	if code, _, _ := e.send("", "GET", "/healthz", nil); code != http.StatusOK {
		t.Errorf("after the panics /healthz = %d", code)
	}
}

// TestPanicInFeaturesDegrades: a panic inside the decision (a feature
// source here) is contained by the engine: the payment still gets an
// answer, degraded to the fallback, and the panic is logged.
func TestPanicInFeaturesDegrades(t *testing.T) {
	e := newEdge(t, edgeOptions{
		fallback: engine.Deny,
		features: featuresFunc(func(context.Context, *engine.Payment, []engine.FeatureValue) ([]engine.FeatureValue, error) {
			panic("feature bug")
		}),
	})
	code, _, data := e.send("", "POST", "/v1/decisions", payment("t_feature_panic"))
	d := decodeJSON[struct {
		decision
		DegradedCause string `json:"degraded_cause"`
	}](t, data)
	if code != http.StatusOK || d.Decision != "deny" || !d.Degraded || d.DegradedCause != "internal_error" {
		t.Errorf("got %d %s", code, data)
	}
	if !strings.Contains(e.logs.String(), `"msg":"decision panicked"`) {
		t.Errorf("panic not logged:\n%s", e.logs.String())
	}
}
