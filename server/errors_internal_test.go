package server

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/riskengine/risk/engine"
)

// TestAPIErrorMessage: a client gets the message written where the
// condition was found, never the chain wrapped around it on the way up,
// which may hold storage paths and internals.
func TestAPIErrorMessage(t *testing.T) {
	inner := fmt.Errorf("rule %q is already in the draft: %w", "velocity", engine.ErrConflict)
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"as written", inner, http.StatusConflict, "conflict", `rule "velocity" is already in the draft: conflict`},
		{"wrapped twice", fmt.Errorf("publish: write /var/lib/risk/000007.vlog: %w", fmt.Errorf("save draft: %w", inner)), http.StatusConflict, "conflict", `rule "velocity" is already in the draft: conflict`},
		{"joined", fmt.Errorf("decision %q: %w: %w", "dec_1", errors.New("badger: key not found"), engine.ErrNotFound), http.StatusNotFound, "not_found", `decision "dec_1": badger: key not found: not found`},
		{"wrapped join", fmt.Errorf("load: %w", errors.Join(errors.New("disk"), fmt.Errorf("list %q: %w", "l", engine.ErrNotFound))), http.StatusNotFound, "not_found", `list "l": not found`},
		{"bare sentinel", fmt.Errorf("read: %w", engine.ErrInvalid), http.StatusBadRequest, "invalid", "read: invalid input"},
		{"sentinel itself", engine.ErrInvalid, http.StatusBadRequest, "invalid", "invalid input"},
		{"unavailable", fmt.Errorf("features: badger: %w", engine.ErrUnavailable), http.StatusServiceUnavailable, "unavailable", "the service cannot answer right now"},
		{"internal", errors.New("badger: open /var/lib/risk: permission denied"), http.StatusInternalServerError, "internal", "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := toAPIError(tt.err)
			if status != tt.wantStatus || body.Code != tt.wantCode || body.Message != tt.wantMsg {
				t.Errorf("got %d %s %q, want %d %s %q", status, body.Code, body.Message, tt.wantStatus, tt.wantCode, tt.wantMsg)
			}
		})
	}
}
