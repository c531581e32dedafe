package review

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/kv"
)

// chunk is how many decisions one transaction of Sync covers: the
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
		from, err := q.cursor(ctx)
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
		added, err := q.openItems(ctx, items, from, next)
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
func (q *Queue) openItems(ctx context.Context, items []Item, from, next uint64) ([]Item, error) {
	var added []Item
	err := q.cfg.DB.Update(ctx, func(tx kv.Tx) error {
		added = added[:0]
		cur, err := readCursor(tx)
		if err != nil {
			return err
		}
		if cur != from {
			return fmt.Errorf("review cursor moved from %d to %d during a pass", from, cur)
		}
		for _, it := range items {
			key := []byte(prefixItem + it.ID)
			_, err := tx.Get(key)
			if err == nil {
				continue // opened before
			}
			if !errors.Is(err, kv.ErrNotFound) {
				return err
			}
			if err := q.putItem(tx, it); err != nil {
				return err
			}
			if err := q.cfg.set(tx, timeKey(prefixActive, it.OpenedAt.UnixNano(), it.ID), nil, it.OpenedAt); err != nil {
				return err
			}
			if q.cfg.OpenTxn != nil {
				if err := q.cfg.OpenTxn(tx, it); err != nil {
					return err
				}
			}
			added = append(added, it)
		}
		return tx.Set([]byte(keyCursor), seqValue(next))
	})
	if err != nil {
		return nil, fmt.Errorf("open review items: %w", err)
	}
	return added, nil
}

func (q *Queue) putItem(tx kv.Tx, it Item) error {
	v, err := encodeValue(it)
	if err != nil {
		return err
	}
	return q.cfg.set(tx, []byte(prefixItem+it.ID), v, it.OpenedAt)
}

func (q *Queue) cursor(ctx context.Context) (uint64, error) {
	var seq uint64
	err := q.cfg.DB.View(ctx, func(tx kv.Tx) error {
		var err error
		seq, err = readCursor(tx)
		return err
	})
	return seq, err
}

func readCursor(tx kv.Tx) (uint64, error) {
	v, err := tx.Get([]byte(keyCursor))
	if errors.Is(err, kv.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read review cursor: %w", err)
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("review cursor of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func seqValue(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
