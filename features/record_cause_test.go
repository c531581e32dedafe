package features

import (
	"testing"

	"github.com/riskengine/risk/engine"
)

// TestDecodeCause pins how the error text older releases stored as the
// degraded cause reads back: as the code of its first cause, never as the
// text (which a replay would send to the gateway).
func TestDecodeCause(t *testing.T) {
	tests := []struct {
		stored string
		want   engine.Cause
	}{
		{"", ""},
		{"deadline", engine.CauseDeadline},
		{"state_corrupt", engine.CauseStateCorrupt},
		{"features: read features: context deadline exceeded", engine.CauseDeadline},
		{"features: badger: read /var/lib/risk/000123.vlog: input/output error; rules: context deadline exceeded", engine.CauseFeatureStoreUnavailable},
		{"limits: context deadline exceeded", engine.CauseDeadline},
		{"limits: read spend: closed", engine.CauseLimitsUnavailable},
		{"rules: context deadline exceeded", engine.CauseRulesDeadline},
		{"decision store: badger gone", engine.CauseDecisionStoreUnavailable},
		{"panic: runtime error: index out of range [3] with length 3", engine.CauseInternal},
		{"no rule set loaded", engine.CauseNoRules},
		{"something else", engine.CauseOther},
	}
	for _, tt := range tests {
		if got := decodeCause(tt.stored); got != tt.want {
			t.Errorf("decodeCause(%q) = %q, want %q", tt.stored, got, tt.want)
		}
	}
}
