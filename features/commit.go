package features

// Group commit: decisions queue to one committer, which writes a batch in
// one Badger transaction and then applies it to the feature windows in
// sequence order.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"
)

// Commit implements engine.DecisionStore: it writes rec durably (with the
// next sequence number), then records the payment into every feature.
func (s *Store) Commit(ctx context.Context, rec *engine.Record) error {
	if s.closed.Load() {
		return fmt.Errorf("store is closing: %w", engine.ErrUnavailable)
	}
	tab := s.tables.of(rec)
	bp := recordBufs.Get().(*[]byte)
	data, err := appendRecord(*bp, rec, tab)
	if err != nil {
		recordBufs.Put(bp)
		return err
	}
	req := &commitReq{rec: rec, data: data, tab: tab, done: make(chan error, 1)}
	select {
	case s.commits <- req:
	case <-ctx.Done():
		recordBufs.Put(bp)
		return fmt.Errorf("queue decision: %w", ctx.Err())
	}
	// Once queued the commit will happen; wait for it whatever ctx says so
	// the caller never acknowledges a write it does not know the fate of.
	err = <-req.done
	// Badger copied the record into its log and memtable during the
	// commit, so the buffer is free again.
	if cap(data) <= maxPooledRecord {
		*bp = data[:0]
		recordBufs.Put(bp)
	}
	return err
}

// recordBufs holds encoding buffers of decision records between commits.
var recordBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledRecord is the largest record buffer kept for reuse.
const maxPooledRecord = 64 << 10

// commitLoop is the single writer of decision records: it takes queued
// commits in batches and writes each batch in one Badger transaction
// (group commit), so writers never conflict and fsync, when on, is shared.
// It then applies the batch to the feature windows in sequence order, which
// keeps the flushed windows consistent with the watermark.
func (s *Store) commitLoop() {
	defer s.wg.Done()
	batch := make([]*commitReq, 0, maxBatch)
	for {
		var first *commitReq
		select {
		case first = <-s.commits:
		case <-s.closing:
			// Drain what was queued before closing.
			for {
				select {
				case r := <-s.commits:
					s.writeBatch([]*commitReq{r})
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
		if len(s.commits) == 0 {
			// Let the decisions being evaluated on other goroutines
			// queue theirs first: under load this makes batches of
			// several decisions, which share the transaction, the
			// hand-off to Badger's writer and the sequence-log key. An
			// idle server has nothing else to run and loses nothing.
			runtime.Gosched()
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-s.commits:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.writeBatch(batch)
	}
}

func (s *Store) writeBatch(batch []*commitReq) {
	start := time.Now()
	var fresh []*commitReq
	var written []*table // tables new to Badger, written with the batch
	s.txf.mu.Lock()      // see txFilter
	err := s.db.Update(func(txn *badger.Txn) error {
		// The idempotency check of every decision in the batch, in the
		// transaction that writes them: a transaction id already stored
		// (a retry) is answered with its record and written nowhere.
		fresh = s.fresh[:0]
		clear(s.inBatch)
		for _, r := range batch {
			r.dup = nil
			// Two commits of one transaction id in one batch: the engine
			// never sends them (it serialises requests per id), but the
			// store does not count a payment twice whoever calls it.
			if first, ok := s.inBatch[r.rec.TransactionID]; ok {
				r.dup = first.rec
				if first.dup != nil {
					r.dup = first.dup
				}
				continue
			}
			s.inBatch[r.rec.TransactionID] = r
			derived := engine.DecisionID(r.rec.TransactionID)
			r.derived = r.rec.ID == derived
			stored, err := s.getByTxID(txn, r.rec.TransactionID, derived)
			switch {
			case err == nil:
				r.dup = stored
				continue
			case !errors.Is(err, badger.ErrKeyNotFound):
				return err
			}
			fresh = append(fresh, r)
		}
		s.seqMu.Lock()
		defs := s.defs.Load()
		for _, r := range fresh {
			s.seq++
			r.rec.Seq = s.seq
			r.defs = defs
			binary.BigEndian.PutUint64(r.data[:8], s.seq)
		}
		s.seqMu.Unlock()
		for _, r := range fresh {
			s.txf.add(r.rec.ID) // before the write: no false negatives
			if err := s.setRecord(txn, r.rec, r.data, r.derived); err != nil {
				return err
			}
			if !r.tab.stored.Load() && !slices.Contains(written, r.tab) {
				if err := r.tab.write(txn); err != nil {
					return err
				}
				written = append(written, r.tab)
			}
		}
		return s.writeSeqGroup(txn, fresh)
	})
	s.txf.mu.Unlock()
	if f := s.txf.active.Load(); f != nil && f.full() {
		s.startTxFilter(2 * f.keys)
	}
	if err == nil {
		for _, t := range written {
			t.stored.Store(true)
		}
	}
	s.fresh = fresh[:0]
	if d := time.Since(start); d > slowWrite {
		s.opts.Log.Warn("slow decision write", "duration", d, "decisions", len(batch))
	}
	s.applyMu.Lock()
	if err != nil {
		err = fmt.Errorf("write decisions: %w", err)
	} else {
		for _, r := range fresh {
			s.apply(r.rec, r.defs)
		}
	}
	if len(fresh) > 0 {
		s.applied.Store(fresh[len(fresh)-1].rec.Seq)
	}
	s.applyMu.Unlock()
	for _, r := range batch {
		if err == nil && r.dup != nil {
			r.done <- &engine.DuplicateError{Stored: r.dup}
			continue
		}
		r.done <- err
	}
}
