package features

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/features/kv"
)

// KV returns the store's database as a kv.DB: what lists, keys, rule
// versions, the audit trail and every other small store keep their records
// in on a single node. It is valid while the store is open.
func (s *Store) KV() kv.DB { return badgerKV{s.db} }

// badgerKV implements kv.DB on Badger. Badger's transactions are
// serializable snapshot transactions, which is what kv.DB promises.
type badgerKV struct{ db *badger.DB }

func (b badgerKV) View(ctx context.Context, fn func(kv.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return kvError(b.db.View(func(txn *badger.Txn) error { return fn(badgerTx{txn}) }))
}

func (b badgerKV) Update(ctx context.Context, fn func(kv.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return kvError(b.db.Update(func(txn *badger.Txn) error { return fn(badgerTx{txn}) }))
}

// kvError maps Badger's errors onto the kv package's.
func kvError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, badger.ErrConflict):
		return fmt.Errorf("%w: %w", kv.ErrConflict, err)
	case errors.Is(err, badger.ErrTxnTooBig):
		return fmt.Errorf("%w: %w", kv.ErrTooBig, err)
	}
	return err
}

type badgerTx struct{ txn *badger.Txn }

func (t badgerTx) Get(key []byte) ([]byte, error) {
	item, err := t.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, kv.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

func (t badgerTx) Set(key, value []byte) error { return kvError(t.txn.Set(key, value)) }

func (t badgerTx) SetTTL(key, value []byte, ttl time.Duration) error {
	return kvError(t.txn.SetEntry(badger.NewEntry(key, value).WithTTL(ttl)))
}

func (t badgerTx) Delete(key []byte) error { return kvError(t.txn.Delete(key)) }

func (t badgerTx) Scan(prefix []byte, opt kv.ScanOptions, fn func(key, value []byte) error) error {
	it := t.txn.NewIterator(badger.IteratorOptions{
		Reverse: opt.Reverse, PrefetchValues: !opt.KeysOnly, PrefetchSize: 16,
	})
	defer it.Close()
	start := opt.From
	switch {
	case start != nil:
	case !opt.Reverse:
		start = prefix
	default:
		// The greatest key <= PrefixEnd is either PrefixEnd itself, which
		// the loop skips, or the last key of the prefix.
		start = kv.PrefixEnd(prefix)
		if start == nil {
			start = append(bytes.Clone(prefix), bytes.Repeat([]byte{0xff}, 16)...)
		}
	}
	for it.Seek(start); it.Valid(); it.Next() {
		item := it.Item()
		key := item.Key()
		if !bytes.HasPrefix(key, prefix) {
			if opt.Reverse && bytes.Compare(key, prefix) > 0 {
				continue
			}
			return nil
		}
		var value []byte
		if !opt.KeysOnly {
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			value = v
		}
		if err := fn(key, value); err != nil {
			if errors.Is(err, kv.Stop) {
				return nil
			}
			return err
		}
	}
	return nil
}
