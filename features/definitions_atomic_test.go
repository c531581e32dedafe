package features_test

import (
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

// TestDefinitionChangeIsOneWrite is the regression test of a definition
// change written as three Badger transactions (the definitions, the new
// state epoch, the backfill marker): a crash between them left the old
// windows read as valid, or no backfill. Every key of the change must
// carry the same commit version, the mark of one transaction.
func TestDefinitionChangeIsOneWrite(t *testing.T) {
	s := openStore(t, t.TempDir(), countDefs)
	at := time.Date(2026, 10, 1, 10, 0, 0, 0, time.UTC)
	for i := range 3 {
		commit(t, s, record(engine.Payment{OccurredAt: at.Add(time.Duration(i) * time.Minute), Card: engine.Card{Fingerprint: "c1"}}, engine.Allow))
	}
	defs := append(append([]features.Definition{}, countDefs...),
		features.Definition{Name: "card_n_1h", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Count, Window: "1h"})
	if err := s.SetDefinitions(t.Context(), defs); err != nil {
		t.Fatal(err)
	}
	waitReady(t, s, defs)

	versions := map[string]uint64{}
	err := s.DB().View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{AllVersions: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			switch k := string(item.Key()); k {
			case "m/feature_defs", "m/epoch/card_n_1h", "m/backfill/card_n_1h":
				// The newest set of each key: the change (a later delete
				// of the marker has its own version and no value).
				if !item.IsDeletedOrExpired() && item.Version() > versions[k] {
					versions[k] = item.Version()
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 3 {
		t.Fatalf("found %v, want the definitions, the epoch and the backfill marker", versions)
	}
	if versions["m/epoch/card_n_1h"] != versions["m/feature_defs"] || versions["m/backfill/card_n_1h"] != versions["m/feature_defs"] {
		t.Errorf("commit versions %v: a definition change is more than one transaction", versions)
	}
}
