package review

import (
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
)

// A case id never passes for a card number, whatever the random draw: its
// id goes into label notes, which refuse those. The creation time below
// makes the time part end in digits, so a run across the time and the
// random part is likely within a few hundred draws.
func TestCaseIDIsNeverAPAN(t *testing.T) {
	now := time.Unix(0, 0x0189_7322_8988_0000)
	for i := range 5000 {
		if id := newCaseID(now); engine.LooksLikePAN(id) {
			t.Fatalf("draw %d: id %s looks like a card number", i, id)
		}
	}
	if got := caseNote("case_4111111111111111"); got != "case" {
		t.Errorf("note of a PAN-like id = %q, want %q", got, "case")
	}
}
