package redisstate_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/redisstate"
)

// lateLabelDefs read labels, which arrive after the decision.
var lateLabelDefs = []features.Definition{
	{Name: "card_chargebacks_90d", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "90d", Where: `"chargeback" in labels`},
	{Name: "card_bad_90d", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "90d", Where: `decision == "deny" || "fraud" in labels`},
	{Name: "card_n_90d", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "90d"},
}

// TestLabelsMatchStore records decisions, then labels some and records
// each labelled decision again on two nodes at once, as the cluster does
// after a label: the counts are the Badger Store's. A rebuild on a fresh
// prefix, from the labelled log, gives them too, and recording the
// labelled decisions after it changes nothing.
func TestLabelsMatchStore(t *testing.T) {
	now := time.Now().UTC()
	oracle := openStore(t, lateLabelDefs, now)
	ns := nodes(t, 2, lateLabelDefs)
	ctx := context.Background()
	stream := mixedStream(60, now.Add(-time.Minute), t.Name())
	for _, rec := range stream {
		if err := oracle.Commit(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if err := ns[0].Record(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	labels := []string{"chargeback", "fraud", "other", "chargeback", "fraud"}
	var labelled []*engine.Record
	for i, rec := range stream {
		if i%3 != 0 {
			continue
		}
		for _, l := range labels[:1+i%len(labels)] {
			got, added, err := oracle.AddLabel(ctx, rec.ID, engine.Label{Label: l, CreatedAt: now})
			if err != nil {
				t.Fatal(err)
			}
			if !added {
				continue
			}
			labelled = append(labelled, got)
			var wg sync.WaitGroup
			for _, n := range ns {
				wg.Go(func() {
					if err := n.Record(ctx, got); err != nil {
						t.Errorf("record labelled: %v", err)
					}
				})
			}
			wg.Wait()
		}
	}
	cards := func() []engine.Payment {
		var out []engine.Payment
		for i := range 5 {
			out = append(out, engine.Payment{OccurredAt: now, Card: engine.Card{Fingerprint: fmt.Sprintf("fp_%d", i)}})
		}
		return out
	}()
	check := func(t *testing.T, s *redisstate.Store) {
		t.Helper()
		chargebacks := 0.0
		for _, p := range cards {
			got, want := values(t, s, p), values(t, oracle, p)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("card %s: redis gave\n%v\nbadger gave\n%v", p.Card.Fingerprint, got, want)
			}
			chargebacks += want[0].Value
		}
		if chargebacks == 0 {
			t.Error("no chargeback counted: the test labels nothing")
		}
	}
	t.Run("live", func(t *testing.T) { check(t, ns[1]) })
	t.Run("rebuilt", func(t *testing.T) {
		c, _ := newClient(t)
		s := newState(t, c, newPrefix(t, c), lateLabelDefs, func(o *redisstate.Options) { o.Now = func() time.Time { return now } })
		if err := s.Rebuild(ctx, oracle, nil); err != nil {
			t.Fatal(err)
		}
		for _, rec := range labelled {
			if err := s.Record(ctx, rec); err != nil {
				t.Fatal(err)
			}
		}
		check(t, s)
	})
}
