package review

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"
)

// chunk is how many decisions one Badger transaction of Sync covers: the
// items opened for them and the cursor past them are written together.
const chunk = 512

var errChunk = errors.New("chunk full")

// Sync reads the decision log from the stored cursor to its end, opens an
// item for every decision that needs one, and moves the cursor, and
// returns how many items it opened. Items and cursor move in one
// transaction per chunk, and an item already stored is left as it is, so a
// pass cut short by a crash opens each item exactly once when repeated.
// The background reader calls it; tests call it to read the log at once.
func (q *Queue) Sync(ctx context.Context) (int, error) {
	q.syncMu.Lock()
	defer q.syncMu.Unlock()
	opened := 0
	for {
		from, err := q.cursor()
		if err != nil {
			return opened, err
		}
		pol := q.policy.Load()
		var (
			items []Item
			next  = from
			n     int
		)
		err = q.cfg.Decisions.ScanRecords(ctx, from, func(rec *engine.Record) error {
			if rec.Seq < from {
				return nil
			}
			next, n = rec.Seq+1, n+1
			if it, ok := pol.itemFor(rec); ok {
				items = append(items, it)
			}
			if n == chunk {
				return errChunk
			}
			return nil
		})
		if err != nil && !errors.Is(err, errChunk) {
			return opened, fmt.Errorf("read decision log: %w", err)
		}
		if n == 0 {
			return opened, nil
		}
		added, err := q.openItems(items, from, next)
		if err != nil {
			return opened, err
		}
		opened += len(added)
		if q.cfg.OnOpen != nil {
			for _, it := range added {
				q.cfg.OnOpen(ctx, it)
			}
		}
		if n < chunk {
			return opened, nil
		}
	}
}

// openItems stores the items not stored yet and moves the cursor from
// from to next, in one transaction. It returns the items it stored.
func (q *Queue) openItems(items []Item, from, next uint64) ([]Item, error) {
	var added []Item
	err := q.cfg.DB.Update(func(txn *badger.Txn) error {
		added = added[:0]
		cur, err := readCursor(txn)
		if err != nil {
			return err
		}
		if cur != from {
			return fmt.Errorf("review cursor moved from %d to %d during a pass", from, cur)
		}
		for _, it := range items {
			key := []byte(prefixItem + it.ID)
			_, err := txn.Get(key)
			if err == nil {
				continue // opened before
			}
			if !errors.Is(err, badger.ErrKeyNotFound) {
				return err
			}
			if err := q.putItem(txn, it); err != nil {
				return err
			}
			if err := txn.SetEntry(q.cfg.entry(timeKey(prefixActive, it.OpenedAt.UnixNano(), it.ID), nil, it.OpenedAt)); err != nil {
				return err
			}
			if q.cfg.OpenTxn != nil {
				if err := q.cfg.OpenTxn(txn, it); err != nil {
					return err
				}
			}
			added = append(added, it)
		}
		return txn.Set([]byte(keyCursor), seqValue(next))
	})
	if err != nil {
		return nil, fmt.Errorf("open review items: %w", err)
	}
	return added, nil
}

func (q *Queue) putItem(txn *badger.Txn, it Item) error {
	v, err := encodeValue(it)
	if err != nil {
		return err
	}
	return txn.SetEntry(q.cfg.entry([]byte(prefixItem+it.ID), v, it.OpenedAt))
}

func (q *Queue) cursor() (uint64, error) {
	var seq uint64
	err := q.cfg.DB.View(func(txn *badger.Txn) error {
		var err error
		seq, err = readCursor(txn)
		return err
	})
	return seq, err
}

func readCursor(txn *badger.Txn) (uint64, error) {
	item, err := txn.Get([]byte(keyCursor))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read review cursor: %w", err)
	}
	var seq uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("review cursor of %d bytes", len(v))
		}
		seq = binary.BigEndian.Uint64(v)
		return nil
	})
	return seq, err
}

func seqValue(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
