package openapitest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/riskengine/risk/server/openapi/openapitest"
)

// recordingTB collects what Handler reports instead of failing the test.
type recordingTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// TestHandler: documented exchanges pass; an undocumented answer, an
// accepted undocumented request and an undocumented route are reported.
func TestHandler(t *testing.T) {
	const decision = `{"decision_id":"dec_1","transaction_id":"tx_1","decision":"allow","score":0,"reasons":[],"limits":{},"ruleset_version":1,"degraded":false,"evaluated_at":"2026-01-02T00:00:00Z"}`
	const payment = `{"transaction_id":"tx_1","amount":100,"currency":"USD"}`
	tests := []struct {
		name, method, path, body string
		status                   int
		answer, contentType      string
		wantError                string // "" for none
	}{
		{"health", "GET", "/healthz", "", 200, `{"status":"ok"}`, "application/json", ""},
		{"decision", "POST", "/v1/decisions", payment, 200, decision, "application/json", ""},
		{"refused payment", "POST", "/v1/decisions", `{"transaction_id":"tx_1","amount":100,"currency":"USD","pan":"4111"}`, 400,
			`{"code":"unknown_field","message":"unknown field \"pan\"","field":"pan","request_id":"r1"}`, "application/json", ""},
		{"an unknown outcome", "POST", "/v1/decisions", payment, 200, strings.Replace(decision, `"allow"`, `"maybe"`, 1), "application/json", "does not match the document"},
		{"an undocumented field", "POST", "/v1/decisions", payment, 200, strings.Replace(decision, `"score":0`, `"score":0,"secret":1`, 1), "application/json", "does not match the document"},
		{"a missing field", "POST", "/v1/decisions", payment, 200, strings.Replace(decision, `"degraded":false,`, "", 1), "application/json", "does not match the document"},
		{"an accepted unknown field", "POST", "/v1/decisions", `{"transaction_id":"tx_1","amount":100,"currency":"USD","pan":"4111"}`, 200, decision, "application/json", "does not allow this request"},
		{"an error of another shape", "GET", "/v1/decisions/dec_1", "", 404, `{"error":"not found"}`, "application/json", "does not match the document"},
		{"an undocumented status", "DELETE", "/admin/rules/r1", "", 200, `{}`, "application/json", "status 200 is not documented"},
		{"an undocumented content type", "GET", "/admin/ruleset/export", "", 200, "rules: []", "text/csv", "not documented"},
		{"an unknown route found", "GET", "/v1/secret", "", 200, `{}`, "application/json", "not in the document"},
		{"an unknown route not found", "GET", "/v1/secret", "", 404, `{"code":"not_found","message":"Not Found"}`, "application/json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingTB{TB: t}
			h := openapitest.Handler(rec, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.answer)
			}))
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			h.ServeHTTP(httptest.NewRecorder(), req)
			switch {
			case tt.wantError == "" && len(rec.errors) > 0:
				t.Errorf("reported %q, want nothing", rec.errors)
			case tt.wantError != "" && (len(rec.errors) != 1 || !strings.Contains(rec.errors[0], tt.wantError)):
				t.Errorf("reported %q, want one report containing %q", rec.errors, tt.wantError)
			}
		})
	}
}
