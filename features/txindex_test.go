package features_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

// TestLookupByTransaction covers both ways from a transaction id to its
// record: the derived decision id (engine.DecisionID), which needs no
// index key, and the t/ index of records stored under another id (by an
// older version, or a caller choosing its own), which must keep working
// after a restart and keep retries from being counted twice.
func TestLookupByTransaction(t *testing.T) {
	dir := t.TempDir()
	s := features.New(features.Options{Dir: dir, CompileFilter: compileFilter, FlushInterval: time.Hour})
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	derived := record(engine.Payment{TransactionID: "tx_derived", OccurredAt: now}, engine.Allow)
	commit(t, s, derived)
	if n := countKeys(t, s.DB(), "t/"); n != 0 {
		t.Errorf("%d transaction index keys for a derived id, want 0", n)
	}
	own := record(engine.Payment{TransactionID: "tx_own", OccurredAt: now}, engine.Deny)
	own.ID = engine.NewID("dec_", now)
	commit(t, s, own)
	if n := countKeys(t, s.DB(), "t/"); n != 1 {
		t.Errorf("%d transaction index keys, want 1 (for the record with its own id)", n)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	s2 := openStore(t, dir, nil)
	ctx := context.Background()
	for _, want := range []*engine.Record{derived, own} {
		got, err := s2.Lookup(ctx, want.TransactionID)
		if err != nil || got.ID != want.ID {
			t.Fatalf("Lookup(%s) after restart = %v, %v; want %s", want.TransactionID, got, err, want.ID)
		}
		retry := record(engine.Payment{TransactionID: want.TransactionID, OccurredAt: now}, engine.Allow)
		var dup *engine.DuplicateError
		if err := s2.Commit(ctx, retry); !errors.As(err, &dup) || dup.Stored.ID != want.ID {
			t.Errorf("retry of %s: err = %v, want a DuplicateError with %s", want.TransactionID, err, want.ID)
		}
	}
	if _, err := s2.Lookup(ctx, "tx_never"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Lookup of an unknown transaction: err = %v, want ErrNotFound", err)
	}
}
