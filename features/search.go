package features

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"
)

// Search returns one page of records matching q and the cursor of the next
// page ("" when there is none). It walks the most selective index (account,
// card, outcome, then time) and never scans records outside it.
func (s *Store) Search(ctx context.Context, q engine.Query) ([]*engine.Record, string, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 500)
	if q.TransactionID != "" {
		rec, err := s.Lookup(ctx, q.TransactionID)
		if errors.Is(err, engine.ErrNotFound) {
			return nil, "", nil
		}
		if err != nil || !q.Matches(rec) {
			return nil, "", err
		}
		return []*engine.Record{rec}, "", nil
	}
	var prefix []byte
	switch {
	case q.AccountID != "":
		prefix = append(append([]byte(prefixAccount), q.AccountID...), 0)
	case q.CardFingerprint != "":
		prefix = append(append([]byte(prefixCard), q.CardFingerprint...), 0)
	case q.Outcome != "":
		prefix = append(append([]byte(prefixOutcome), q.Outcome...), 0)
	default:
		prefix = []byte(prefixTime)
	}
	start := prefix
	if !q.To.IsZero() {
		start = append(append([]byte(nil), prefix...), invTime(q.To.Add(-1))...)
	}
	if q.Cursor != "" {
		c, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		// A cursor is the 8-byte inverted time and the id of the last
		// decision of the previous page.
		if err == nil && (len(c) <= 8 || !bytes.HasPrefix(c[8:], []byte("dec_"))) {
			err = errors.New("not a cursor")
		}
		if err != nil {
			return nil, "", engine.Invalid("cursor", "invalid_cursor", "cursor is not one this server issued")
		}
		start = append(append(append([]byte(nil), prefix...), c...), 0) // just after the cursor's key
	}
	var out []*engine.Record
	var next string
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(start); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			suffix := it.Item().Key()[len(prefix):]
			if len(suffix) < 8 {
				continue
			}
			at := fromInvTime(suffix[:8])
			if !q.From.IsZero() && at.Before(q.From) {
				break // newest first: everything after is older still
			}
			if len(out) == q.Limit {
				next = base64.RawURLEncoding.EncodeToString(lastKeySuffix(out[len(out)-1], prefix))
				break
			}
			rec, err := s.getRecord(txn, string(suffix[8:]))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if q.Matches(rec) {
				out = append(out, rec)
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("search decisions: %w", err)
	}
	return out, next, nil
}

func lastKeySuffix(rec *engine.Record, _ []byte) []byte {
	return append(invTime(rec.EvaluatedAt), rec.ID...)
}

// AddLabel attaches a feedback label to a decision. added is false when the
// decision already carries that label (nothing changes). The returned
// record is the updated one.
func (s *Store) AddLabel(ctx context.Context, decisionID string, l engine.Label) (rec *engine.Record, added bool, err error) {
	s.labelMu.Lock()
	defer s.labelMu.Unlock()
	var tab *table
	err = s.db.Update(func(txn *badger.Txn) error {
		rec, err = s.getRecord(txn, decisionID)
		if err != nil {
			return err
		}
		if rec.HasLabel(l.Label) {
			return nil
		}
		rec.Labels = append(rec.Labels, l)
		tab = s.tables.of(rec)
		data, err := appendRecord(nil, rec, tab)
		if err != nil {
			return err
		}
		if err := tab.write(txn); err != nil {
			return err
		}
		copy(data[:8], seqBytes(rec.Seq))
		ttl := time.Until(rec.EvaluatedAt.Add(s.opts.Retention))
		if ttl <= 0 {
			ttl = time.Hour
		}
		added = true
		return txn.SetEntry(badger.NewEntry(append([]byte(prefixDecision), decisionID...), data).WithTTL(ttl))
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, fmt.Errorf("decision %q: %w", decisionID, engine.ErrNotFound)
	}
	if err != nil {
		return nil, false, fmt.Errorf("label decision: %w", err)
	}
	if added {
		tab.stored.Store(true)
		s.applyLabel(rec) // see labelled.go: label-filtered features
	}
	return rec, added, nil
}

// ScanRecords calls fn for every stored decision with sequence number >=
// from, in commit order, until fn returns an error or ctx ends.
func (s *Store) ScanRecords(ctx context.Context, from uint64, fn func(rec *engine.Record) error) error {
	return s.scanSeq(ctx, from, fn)
}
