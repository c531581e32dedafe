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
	// An index key is its prefix, the 8-byte inverted time and the
	// decision id (indexKeys). A search without account, card or outcome
	// walks the three outcome indexes merged, newest first: together they
	// hold every decision, in the order of a time index.
	var prefixes [][]byte
	switch {
	case q.AccountID != "":
		prefixes = [][]byte{indexPrefix(prefixAccount, q.AccountID)}
	case q.CardFingerprint != "":
		prefixes = [][]byte{indexPrefix(prefixCard, q.CardFingerprint)}
	case q.Outcome != "":
		prefixes = [][]byte{indexPrefix(prefixOutcome, string(q.Outcome))}
	default:
		for _, o := range []engine.Outcome{engine.Allow, engine.Challenge, engine.Deny} {
			prefixes = append(prefixes, indexPrefix(prefixOutcome, string(o)))
		}
	}
	var from []byte // the suffix to start at
	if !q.To.IsZero() {
		from = invTime(q.To.Add(-1))
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
		from = append(c, 0) // just after the cursor's key
	}
	var out []*engine.Record
	var next string
	err := s.db.View(func(txn *badger.Txn) error {
		w := newIndexWalk(txn, prefixes, from)
		defer w.close()
		for suffix := w.next(); suffix != nil; suffix = w.next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if len(suffix) < 8 {
				continue
			}
			at := fromInvTime(suffix[:8])
			if !q.From.IsZero() && at.Before(q.From) {
				break // newest first: everything after is older still
			}
			if len(out) == q.Limit {
				next = base64.RawURLEncoding.EncodeToString(lastKeySuffix(out[len(out)-1]))
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

// indexPrefix is the prefix of the index keys of one value.
func indexPrefix(index, value string) []byte {
	return append(append([]byte(index), value...), 0)
}

// indexWalk walks the keys under one or more prefixes in the order of
// their suffixes (what follows the prefix), from a given suffix on.
type indexWalk struct {
	its      []*badger.Iterator
	prefixes [][]byte
	cur      int // the iterator of the suffix returned last, or -1
}

func newIndexWalk(txn *badger.Txn, prefixes [][]byte, from []byte) *indexWalk {
	w := &indexWalk{prefixes: prefixes, cur: -1}
	for _, p := range prefixes {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
		it.Seek(append(bytes.Clone(p), from...))
		w.its = append(w.its, it)
	}
	return w
}

// next returns the next suffix, or nil when every prefix is walked. The
// suffix is valid until the following call.
func (w *indexWalk) next() []byte {
	if w.cur >= 0 {
		w.its[w.cur].Next()
	}
	w.cur = -1
	var least []byte
	for i, it := range w.its {
		if !it.Valid() {
			continue
		}
		suffix := it.Item().Key()[len(w.prefixes[i]):]
		if w.cur < 0 || bytes.Compare(suffix, least) < 0 {
			w.cur, least = i, suffix
		}
	}
	return least
}

func (w *indexWalk) close() {
	for _, it := range w.its {
		it.Close()
	}
}

func lastKeySuffix(rec *engine.Record) []byte {
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
