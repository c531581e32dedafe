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
// in on a single node. It is valid while the store is open and safe for
// concurrent use. A function passed to its Update must not start another
// Update: Updates run one at a time.
func (s *Store) KV() kv.DB { return badgerKV{s} }

// badgerKV implements kv.DB on the store's Badger database.
type badgerKV struct{ s *Store }

func (b badgerKV) View(ctx context.Context, fn func(kv.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return kvError(b.s.db.View(func(txn *badger.Txn) error { return fn(badgerTx{txn}) }))
}

// Update runs fn in a Badger transaction while holding the store's kvMu.
// The store opens Badger without conflict detection (the decision log's
// group commit does not need it and it costs throughput), so two Badger
// transactions doing read-modify-write on one key would both commit and
// one increment would be lost. Running kv Updates one at a time gives them
// the serializability kv.DB promises; they are the small stores' rare
// writes, so the lost concurrency does not matter, and ErrConflict never
// happens here.
func (b badgerKV) Update(ctx context.Context, fn func(kv.Tx) error) error {
	b.s.kvMu.Lock()
	defer b.s.kvMu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	return kvError(b.s.db.Update(func(txn *badger.Txn) error { return fn(badgerTx{txn}) }))
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

// Set, SetTTL and Delete copy key and value: Badger keeps the slices it is
// given until the commit, and callers reuse their buffers.

func (t badgerTx) Set(key, value []byte) error {
	return kvError(t.txn.Set(bytes.Clone(key), bytes.Clone(value)))
}

func (t badgerTx) SetTTL(key, value []byte, ttl time.Duration) error {
	return kvError(t.txn.SetEntry(badger.NewEntry(bytes.Clone(key), bytes.Clone(value)).WithTTL(ttl)))
}

func (t badgerTx) Delete(key []byte) error { return kvError(t.txn.Delete(bytes.Clone(key))) }

func (t badgerTx) Scan(prefix []byte, opt kv.ScanOptions, fn func(key, value []byte) error) error {
	it := t.txn.NewIterator(badger.IteratorOptions{
		Reverse: opt.Reverse, PrefetchValues: !opt.KeysOnly, PrefetchSize: 16,
	})
	defer it.Close()
	end := kv.PrefixEnd(prefix)
	switch {
	case !opt.Reverse && (opt.From == nil || bytes.Compare(opt.From, prefix) < 0):
		it.Seek(prefix)
	case !opt.Reverse:
		it.Seek(opt.From)
	case opt.From != nil && (end == nil || bytes.Compare(opt.From, end) < 0):
		it.Seek(opt.From)
	case end != nil:
		// The greatest key <= end is end itself, which the loop skips,
		// or the last key of the prefix.
		it.Seek(end)
	default:
		// A prefix of only 0xff bytes has no end: start at the last key.
		it.Rewind()
	}
	for ; it.Valid(); it.Next() {
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
