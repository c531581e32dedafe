package features

// Reading decision records back: by transaction id (idempotent retries)
// and by decision id.

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"
)

// getByTx reads the record of a transaction id in txn: under its derived
// decision id (engine.DecisionID), or, while some records are not stored
// under theirs, through the t/ index.
func (s *Store) getByTx(txn *badger.Txn, transactionID string) (*engine.Record, error) {
	return s.getByTxID(txn, transactionID, engine.DecisionID(transactionID))
}

// getByTxID is getByTx given the derived decision id.
func (s *Store) getByTxID(txn *badger.Txn, transactionID, id string) (*engine.Record, error) {
	if !s.txIndex.Load() && !s.txf.mayContain(id) {
		return nil, badger.ErrKeyNotFound // never stored: no Badger read
	}
	rec, err := s.getRecord(txn, id)
	switch {
	case err == nil && rec.TransactionID == transactionID:
		return rec, nil
	case err != nil && !errors.Is(err, badger.ErrKeyNotFound):
		return nil, err
	case !s.txIndex.Load():
		return nil, badger.ErrKeyNotFound
	}
	item, err := txn.Get(append([]byte(prefixTx), transactionID...))
	if err != nil {
		return nil, err
	}
	indexed, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	return s.getRecord(txn, string(indexed))
}

// setRecord writes a record and its index keys in txn; derived says its id
// is engine.DecisionID of its transaction.
func (s *Store) setRecord(txn *badger.Txn, rec *engine.Record, data []byte, derived bool) error {
	ttl := s.opts.Retention
	set := func(k, v []byte) error { return txn.SetEntry(badger.NewEntry(k, v).WithTTL(ttl)) }
	id := []byte(rec.ID)
	if err := set(append([]byte(prefixDecision), id...), data); err != nil {
		return err
	}
	if !derived {
		s.txIndex.Store(true)
		if err := set(append([]byte(prefixTx), rec.TransactionID...), id); err != nil {
			return err
		}
	}
	for _, k := range indexKeys(rec) {
		if err := set(k, nil); err != nil {
			return err
		}
	}
	return nil
}

// findTxIndex sets txIndex if any t/ key is stored.
func (s *Store) findTxIndex() error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixTx), PrefetchValues: false})
		defer it.Close()
		it.Rewind()
		if it.Valid() {
			s.txIndex.Store(true)
		}
		return nil
	})
}

// Lookup implements engine.DecisionStore.
func (s *Store) Lookup(ctx context.Context, transactionID string) (*engine.Record, error) {
	var rec *engine.Record
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		rec, err = s.getByTx(txn, transactionID)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("transaction %q: %w", transactionID, engine.ErrNotFound)
	}
	return rec, err
}

// Get returns the record of a decision id, or an error wrapping
// engine.ErrNotFound.
func (s *Store) Get(ctx context.Context, decisionID string) (*engine.Record, error) {
	var rec *engine.Record
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		rec, err = s.getRecord(txn, decisionID)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("decision %q: %w", decisionID, engine.ErrNotFound)
	}
	return rec, err
}

func (s *Store) getRecord(txn *badger.Txn, id string) (*engine.Record, error) {
	item, err := txn.Get(append([]byte(prefixDecision), id...))
	if err != nil {
		return nil, err
	}
	var rec *engine.Record
	err = item.Value(func(v []byte) error {
		var derr error
		rec, derr = decodeRecord(v, func(id tableID) (*table, error) { return s.tables.get(txn, id) })
		return derr
	})
	return rec, err
}
