package engine_test

import (
	"strings"
	"testing"

	"github.com/riskengine/risk/engine"
)

// TestDecisionID pins the derivation of decision ids: stores find a
// transaction's record by it, so a change would lose stored decisions. The
// expected ids were computed apart, with Python's hashlib and base64.
func TestDecisionID(t *testing.T) {
	for _, tc := range []struct{ tx, want string }{
		{"", "dec_265dkc7t7h24d5ws7kzd4kts4w"},
		{"tx_1", "dec_8y8zx4mgfpwxr4v5g5226hrjjw"},
		{strings.Repeat("é", 100), "dec_chy2agps3k7ayw9m4hyq3sbaw0"}, // longer than the stack buffer
	} {
		if got := engine.DecisionID(tc.tx); got != tc.want {
			t.Errorf("DecisionID(%q) = %s, want %s", tc.tx, got, tc.want)
		}
	}
	if engine.DecisionID("tx_1") == engine.DecisionID("tx_2") {
		t.Error("two transactions share a decision id")
	}
}
