package limits_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/limits"
)

// TestBlockForReadsLikeWindows pins a policy's block_for to the lengths
// features.ParseWindow reads, with the same messages: limits parses them
// itself since it may not import features.
func TestBlockForReadsLikeWindows(t *testing.T) {
	lim, err := limits.New(limits.Sources{Kind: limits.EntityAccount}, limits.Options{Compile: compilePredicate})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"90d", "1d", "365d", "366d", "0d", "-1d", "d", "1.5d", "720h", "1m", "59s", "90m", "soon", "", "8761h", "1h30m"} {
		t.Run(in, func(t *testing.T) {
			p := limits.DefaultPolicy()
			p.Effects = map[string]limits.Effect{engine.LabelFraud: {BlockCard: true, BlockFor: in}}
			got := lim.CheckPolicy(p)
			_, want := features.ParseWindow(in)
			if in == "" {
				want = nil // empty block_for never expires
			}
			if (got == nil) != (want == nil) {
				t.Fatalf("CheckPolicy: %v; ParseWindow: %v", got, want)
			}
			if got == nil {
				return
			}
			var fe *engine.FieldError
			if !errors.As(got, &fe) || fe.Field != "effects.fraud.block_for" || !strings.Contains(got.Error(), want.Error()) {
				t.Errorf("CheckPolicy: %v; want a field error on effects.fraud.block_for saying %q", got, want)
			}
		})
	}
}
