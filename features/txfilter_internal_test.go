package features

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
)

// TestTxFilterHasNoFalseNegatives commits decisions from several
// goroutines into a store whose transaction filter starts tiny, so it is
// rebuilt again and again while commits run, then checks that every
// committed id is reported as maybe stored, that every retry is still
// found as a duplicate, that the filter answers most unknown transactions
// without Badger, and that a restart builds it again from the stored ids.
func TestTxFilterHasNoFalseNegatives(t *testing.T) {
	dir := t.TempDir()
	open := func() *Store {
		s := New(Options{Dir: dir, FlushInterval: time.Hour})
		s.txf.minKeys = 64
		if err := s.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitFilter(t, s)
		return s
	}
	s := open()
	const writers, each = 8, 250
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				tx := fmt.Sprintf("tx_%d_%d", w, i)
				rec := &engine.Record{Decision: engine.Decision{ID: engine.DecisionID(tx), TransactionID: tx}}
				if err := s.Commit(context.Background(), rec); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	waitFilter(t, s)
	if got := s.txf.active.Load().keys; got < writers*each/2 {
		t.Errorf("filter sized for %d keys after %d decisions: it was not rebuilt", got, writers*each)
	}
	check := func(s *Store) {
		t.Helper()
		for w := range writers {
			for i := range each {
				tx := fmt.Sprintf("tx_%d_%d", w, i)
				if !s.txf.mayContain(engine.DecisionID(tx)) {
					t.Fatalf("%s committed but the filter says never stored", tx)
				}
			}
		}
		absent := 0
		for i := range 1000 {
			if !s.txf.mayContain(engine.DecisionID(fmt.Sprintf("tx_never_%d", i))) {
				absent++
			}
		}
		if absent < 900 {
			t.Errorf("the filter answered %d of 1000 unknown transactions, want at least 900", absent)
		}
	}
	check(s)
	var dup *engine.DuplicateError
	rec := &engine.Record{Decision: engine.Decision{ID: engine.DecisionID("tx_3_7"), TransactionID: "tx_3_7"}}
	if err := s.Commit(context.Background(), rec); !errors.As(err, &dup) {
		t.Errorf("retry of a committed transaction: err = %v, want a DuplicateError", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	s = open()
	defer s.Close(context.Background())
	check(s)
}

// waitFilter waits until a transaction filter is active and none is being
// built.
func waitFilter(tb testing.TB, s *Store) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); s.txf.active.Load() == nil || s.txf.building.Load(); {
		if time.Now().After(deadline) {
			tb.Fatal("the transaction filter was not built")
		}
		time.Sleep(time.Millisecond)
	}
}
