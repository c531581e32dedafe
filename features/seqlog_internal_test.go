package features

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"
)

// TestSeqLogReadsOldAndGroupedKeys writes five decisions the way stores
// did before the sequence log had groups (one q/ key each), commits twenty
// more in groups, and checks that a scan from every position returns the
// right decisions in order, and that the sequence continues after a
// restart.
func TestSeqLogReadsOldAndGroupedKeys(t *testing.T) {
	dir := t.TempDir()
	open := func() *Store {
		s := New(Options{Dir: dir, FlushInterval: time.Hour})
		if err := s.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	err := s.db.Update(func(txn *badger.Txn) error {
		for seq := uint64(1); seq <= 5; seq++ {
			rec := &engine.Record{Decision: engine.Decision{ID: fmt.Sprintf("dec_old%d", seq), TransactionID: fmt.Sprintf("tx_old%d", seq)}}
			data, err := encodeRecordV2(rec)
			if err != nil {
				return err
			}
			binary.BigEndian.PutUint64(data, seq)
			for k, v := range map[string]string{
				prefixDecision + rec.ID:                                       string(data),
				prefixTx + rec.TransactionID:                                  rec.ID,
				string(binary.BigEndian.AppendUint64([]byte(prefixSeq), seq)): rec.ID,
			} {
				if err := txn.Set([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	s = open()
	// Hold the committer after its first group so the other decisions
	// queue up and commit together.
	s.applyMu.Lock()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			rec := &engine.Record{Decision: engine.Decision{ID: fmt.Sprintf("dec_new%02d", i), TransactionID: fmt.Sprintf("tx_new%02d", i)}}
			if err := s.Commit(context.Background(), rec); err != nil {
				t.Error(err)
			}
		})
	}
	// Poll until every decision is with the committer: written by its
	// first group (which then waits for applyMu) or queued behind it. The
	// deadline fails the test rather than letting it go on with decisions
	// that may commit one by one.
	held := func() int {
		n := len(s.commits)
		err := s.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixTx + "tx_new")})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				n++
			}
			return nil
		})
		if err != nil {
			s.applyMu.Unlock()
			t.Fatal(err)
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		n := held()
		if n >= 20 {
			break
		}
		if time.Now().After(deadline) {
			s.applyMu.Unlock()
			t.Fatalf("%d of 20 decisions with the held committer", n)
		}
		time.Sleep(time.Millisecond)
	}
	s.applyMu.Unlock()
	wg.Wait()

	var want []uint64
	for seq := uint64(1); seq <= 25; seq++ {
		want = append(want, seq)
	}
	for from := uint64(0); from <= 26; from++ {
		var got []uint64
		err := s.scanSeq(context.Background(), from, func(rec *engine.Record) error {
			got = append(got, rec.Seq)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if w := want[min(max(from, 1), 26)-1:]; !slices.Equal(got, w) {
			t.Fatalf("scan from %d = %v, want %v", from, got, w)
		}
	}
	groups := 0
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixSeqGroup)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			groups++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if groups >= 20 {
		t.Errorf("20 decisions committed together took %d sequence log keys, want fewer", groups)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	s = open()
	defer s.Close(context.Background())
	rec := &engine.Record{Decision: engine.Decision{ID: "dec_after", TransactionID: "tx_after"}}
	if err := s.Commit(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if rec.Seq != 26 {
		t.Errorf("sequence after restart = %d, want 26", rec.Seq)
	}
}
