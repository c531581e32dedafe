package features

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"

	"github.com/riskengine/risk/features/keyspace"
)

const prefixBackfill = keyspace.Backfill

// Backfill builds one new feature from the stored decision history while
// live decisions keep flowing. Decisions up to UpTo are replayed from the
// log; later ones are applied live, so none is counted twice.
type Backfill struct {
	Feature string
	UpTo    uint64

	processed atomic.Uint64
	done      atomic.Bool
	failed    atomic.Pointer[string]
	cancel    context.CancelFunc
}

// BackfillStatus is a snapshot of a backfill's progress.
type BackfillStatus struct {
	Feature   string `json:"feature"`
	Processed uint64 `json:"processed"`
	Total     uint64 `json:"total"`
	Done      bool   `json:"done"`
	Error     string `json:"error,omitempty"`
}

// Status returns the progress of the latest backfill of a feature; ok is
// false when the feature was never backfilled by this process.
func (s *Store) Status(feature string) (st BackfillStatus, ok bool) {
	v, ok := s.backfills.Load(feature)
	if !ok {
		return BackfillStatus{}, false
	}
	b := v.(*Backfill)
	st = BackfillStatus{Feature: b.Feature, Processed: b.processed.Load(), Total: b.UpTo, Done: b.done.Load()}
	if e := b.failed.Load(); e != nil {
		st.Error = *e
	}
	return st, true
}

// ready reports whether f's value covers its whole window.
func (s *Store) ready(f *feature) bool {
	v, ok := s.backfills.Load(f.def.Name)
	return !ok || v.(*Backfill).done.Load()
}

// startBackfill replays decisions 1..upTo into f in the background. The
// feature's backfill marker is stored when upTo is not 0, and deleted once
// the backfill is flushed.
func (s *Store) startBackfill(f *feature, upTo uint64) {
	if prev, ok := s.backfills.Load(f.def.Name); ok {
		prev.(*Backfill).cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Backfill{Feature: f.def.Name, UpTo: upTo, cancel: cancel}
	s.backfills.Store(f.def.Name, b)
	if upTo == 0 {
		b.done.Store(true)
		return
	}
	// The marker was stored with the definition change (SetDefinitions),
	// or is the one found at Open.
	marker := []byte(prefixBackfill + f.def.Name)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		go func() {
			select {
			case <-s.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := s.backfill(ctx, f, b)
		if err != nil {
			msg := err.Error()
			b.failed.Store(&msg)
			if !errors.Is(err, context.Canceled) {
				s.opts.Log.Error("backfill feature", "feature", f.def.Name, "err", err)
			}
			return
		}
		// The marker goes only once the backfilled windows are flushed: a
		// crash before that restarts the backfill rather than losing it.
		if err := s.flush(); err != nil {
			s.opts.Log.Error("flush backfill", "feature", f.def.Name, "err", err)
			return
		}
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Delete(marker) }); err != nil {
			s.opts.Log.Error("finish backfill", "feature", f.def.Name, "err", err)
		}
		b.done.Store(true)
	}()
}

var errStop = errors.New("stop")

func (s *Store) backfill(ctx context.Context, f *feature, b *Backfill) error {
	// Wait until every decision up to UpTo is in the log.
	for s.applied.Load() < b.UpTo {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	oldest := s.opts.Now().Add(-f.window - f.bucket)
	err := s.scanSeq(ctx, 1, func(rec *engine.Record) error {
		if rec.Seq > b.UpTo {
			return errStop
		}
		b.processed.Store(rec.Seq)
		if rec.Payment.OccurredAt.Before(oldest) {
			return nil
		}
		s.applyOne(rec, f, applyNew)
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	b.processed.Store(b.UpTo)
	return err
}

// pendingBackfills returns the features whose backfill did not finish
// before the last shutdown.
func (s *Store) pendingBackfills() (map[string]bool, error) {
	out := map[string]bool{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixBackfill)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			out[string(it.Item().Key()[len(prefixBackfill):])] = true
		}
		return nil
	})
	return out, err
}

func sameDefinition(a, b Definition) bool {
	return a.Name == b.Name && slices.Equal(a.Entity, b.Entity) && a.Aggregate == b.Aggregate &&
		a.Field == b.Field && a.Window == b.Window && a.Where == b.Where
}
