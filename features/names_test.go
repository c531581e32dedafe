package features_test

import (
	"context"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

// TestEntityNamesNumbered: entities are stored with their feature names as
// numbers (entity encoding version 2); a feature defined later gets the next
// number; numbers survive restarts unchanged and the windows read back.
func TestEntityNamesNumbered(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	first := []features.Definition{countDefs[0]}
	both := slices.Clone(countDefs)
	both = append(both, features.Definition{Name: "card_max", Entity: features.Paths{"card.fingerprint"}, Aggregate: features.Max, Field: "amount", Window: "24h"})
	pay := func(s *features.Store, amount int64) {
		commit(t, s, record(engine.Payment{OccurredAt: now, Amount: amount, Card: engine.Card{Fingerprint: "fp1"}, Account: engine.Account{ID: "a"}}, engine.Allow))
	}
	// closeAndRead closes s and returns the stored numbers and the format
	// byte of the card entity.
	closeAndRead := func(s *features.Store) (map[string]uint64, byte) {
		t.Helper()
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ids := map[string]uint64{}
		var version byte
		err = db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("m/fname/"), PrefetchValues: true})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					return err
				}
				ids[string(it.Item().Key()[len("m/fname/"):])] = binary.BigEndian.Uint64(v)
			}
			item, err := txn.Get([]byte("e/card.fingerprint\x00fp1"))
			if err != nil {
				return err
			}
			return item.Value(func(v []byte) error { version = v[0]; return nil })
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids, version
	}

	s := openStore(t, dir, first)
	pay(s, 100)
	ids, version := closeAndRead(s)
	if version != 2 {
		t.Errorf("card entity stored in version %d, want 2", version)
	}
	if ids["card_n"] == 0 {
		t.Fatalf("card_n has no number: %v", ids)
	}
	firstID := ids["card_n"]

	s = openStore(t, dir, both)
	pay(s, 700)
	ids, version = closeAndRead(s)
	if version != 2 {
		t.Errorf("card entity stored in version %d after a new feature, want 2", version)
	}
	if ids["card_n"] != firstID {
		t.Errorf("card_n renumbered from %d to %d", firstID, ids["card_n"])
	}
	if len(ids) < 3 || ids["card_max"] == 0 || ids["acct_sum"] == 0 || ids["card_max"] == ids["acct_sum"] {
		t.Errorf("numbers after adding features: %v", ids)
	}

	s = openStore(t, dir, nil)
	probe := engine.Payment{OccurredAt: now.Add(time.Second), Card: engine.Card{Fingerprint: "fp1"}, Account: engine.Account{ID: "a"}}
	for name, want := range map[string]float64{"card_n": 2, "card_max": 700, "acct_sum": 800} {
		if got := value(t, s, probe, name); got != want {
			t.Errorf("%s after restart = %v, want %v", name, got, want)
		}
	}
}
