package features_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

// TestRecordTablesSurviveRestart commits decisions under two rule sets,
// reopens the store (so no table is in memory) and checks that every
// record reads back with its own rule results and feature values, that
// each rule set's table was stored once, and that a record relabelled
// after the restart keeps its results.
func TestRecordTablesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := features.New(features.Options{Dir: dir, CompileFilter: compileFilter, FlushInterval: time.Hour})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	ruleSet := func(message string) []engine.RuleResult {
		return []engine.RuleResult{
			{RuleInfo: &engine.RuleInfo{ID: "velocity", Name: "Card velocity", Version: 3, Mode: engine.ModeActive, Action: engine.ActionDeny, Score: 50, Reason: "velocity", Message: message}},
			{RuleInfo: &engine.RuleInfo{ID: "new_device", Name: "New device", Version: 1, Mode: engine.ModeShadow, Action: engine.ActionChallenge, Score: 20}},
		}
	}
	var recs []*engine.Record
	for i := range 40 {
		rec := record(engine.Payment{OccurredAt: time.Now(), Card: engine.Card{Fingerprint: "fp"}}, engine.Allow)
		rec.Rules = ruleSet(fmt.Sprintf("rule set %d", i/20)) // two rule sets, 20 decisions each
		rec.Rules[0].Matched = i%3 == 0
		if i%7 == 0 {
			rec.Rules[1].Error = fmt.Sprintf("error %d", i)
		}
		rec.Features = []engine.FeatureValue{{Name: "card_n", Value: float64(i), Ready: true}, {Name: "acct_sum", Value: 0.5}}
		commit(t, s, rec)
		recs = append(recs, rec)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	s2 := openStore(t, dir, nil)
	ctx := context.Background()
	for _, want := range recs {
		got, err := s2.Get(ctx, want.ID)
		if err != nil {
			t.Fatalf("get %s: %v", want.ID, err)
		}
		if !reflect.DeepEqual(got.Rules, want.Rules) || !reflect.DeepEqual(got.Features, want.Features) {
			t.Fatalf("decision %s: rules %+v features %+v, want %+v %+v", want.ID, got.Rules, got.Features, want.Rules, want.Features)
		}
	}
	if n := countKeys(t, s2.DB(), "m/table/"); n != 2 {
		t.Errorf("%d tables stored, want 2 (one per rule set)", n)
	}

	labelled, added, err := s2.AddLabel(ctx, recs[7].ID, engine.Label{Label: "legit", Source: "test", CreatedAt: time.Now()})
	if err != nil || !added {
		t.Fatalf("AddLabel = %v, added %v", err, added)
	}
	got, err := s2.Get(ctx, recs[7].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Rules, recs[7].Rules) || len(got.Labels) != 1 || !reflect.DeepEqual(labelled.Rules, got.Rules) {
		t.Errorf("relabelled decision: rules %+v labels %+v, want rules %+v", got.Rules, got.Labels, recs[7].Rules)
	}
	if n := countKeys(t, s2.DB(), "m/table/"); n != 2 {
		t.Errorf("%d tables stored after relabelling, want 2", n)
	}
}

func countKeys(tb testing.TB, db *badger.DB, prefix string) int {
	tb.Helper()
	n := 0
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}
