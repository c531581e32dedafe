package features

import (
	"context"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/features/kv"
)

// ScanKV calls fn for every live key starting with prefix, in bytewise
// order, with its value and the time it expires (zero when it does not).
// It is what a copy of the small stores into another kv.DB needs and
// kv.Tx.Scan does not tell: how long each key has left. The slices passed
// to fn are valid only during the call; returning kv.Stop ends the scan
// with a nil error. It reads one consistent snapshot.
func (s *Store) ScanKV(ctx context.Context, prefix []byte, fn func(key, value []byte, expires time.Time) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			var exp time.Time
			if e := item.ExpiresAt(); e > 0 {
				exp = time.Unix(int64(e), 0)
			}
			if err := fn(item.Key(), v, exp); err != nil {
				if errors.Is(err, kv.Stop) {
					return nil
				}
				return err
			}
		}
		return nil
	})
}
