package features

// The store's write-behind of feature state: entities are loaded on a cache
// miss, changed ones are written back every FlushInterval (those a label
// changed at every tick), the Bloom filters over stored keys are built and
// sized here, and windows are replayed from the decision log at Open.

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/riskengine/risk/engine"
)

func (s *Store) loadWindow(key []byte) (*entity, error) {
	if f := s.stored.Load(); f != nil && !f.mayContain(key) {
		return nil, badger.ErrKeyNotFound
	}
	var e *entity
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(append([]byte(prefixEntity), key...))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			e, err = decodeEntity(v, s.names.cur.Load())
			return err
		})
	})
	return e, err
}

// flushLoop writes every changed entity every FlushInterval, and the
// entities labels changed at every tick between.
func (s *Store) flushLoop() {
	defer s.wg.Done()
	t := time.NewTicker(min(s.opts.FlushInterval, labelFlushInterval))
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case now := <-t.C:
			var err error
			if now.Sub(last) >= s.opts.FlushInterval {
				last = now
				err = s.flush()
			} else {
				err = s.flushUrgent()
			}
			if err != nil {
				s.opts.Log.Error("flush feature windows", "err", err)
			}
		case <-s.closing:
			return
		}
	}
}

// flushUrgent writes the entities labels changed since the last flush,
// without the watermark: the decisions they hold past it are replayed
// after a crash and skipped by each window's seq, as for any entity
// written after the watermark was taken.
func (s *Store) flushUrgent() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	defs := s.defs.Load()
	n := s.namesFor(defs)
	b := &s.flushed
	s.ws.eachUrgent(func(key string, e *entity) { b.add(defs, n, key, e) })
	if len(b.entries) == 0 {
		return nil
	}
	var keys []string
	for _, e := range b.entries {
		keys = append(keys, string(e.key[len(prefixEntity):]))
	}
	if err := s.writeEntities(s.stored.Load(), b); err != nil {
		s.ws.reurge(keys)
		return fmt.Errorf("write entities changed by labels: %w", err)
	}
	return nil
}

// flush writes every changed entity and then the watermark: the highest
// sequence number up to which every decision is in the written state.
func (s *Store) flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if s.stored.Load().full() {
		if err := s.buildFilter(2 * s.stored.Load().keys); err != nil {
			return err
		}
	}
	defs := s.defs.Load()
	// Only the swap of the dirty sets happens under the committer's lock:
	// every decision up to mark is then in a window that is either in a
	// flushing set or already stored. Windows are encoded after the lock is
	// released; one changed since carries its own seq, which the replay
	// honours, so the stored state never counts a decision twice.
	s.applyMu.Lock()
	mark := s.applied.Load()
	s.ws.swapDirty()
	s.applyMu.Unlock()
	// Shard by shard: a shard's changed entities are encoded under its
	// lock, then written in chunks of flushChunk, one after the other, the
	// watermark after the last shard. Badger has a single writer, and a
	// decision commit queued behind a whole flush (about 3,000 entities at
	// 3,000 decisions a second) waited 10-20 ms for it; encoding every
	// shard before writing made a burst of CPU of its own. The buffers are
	// reused from shard to shard and flush to flush: Badger has copied what
	// it keeps of them once a write batch is flushed.
	b := &s.flushed
	filter := s.stored.Load()
	n := s.namesFor(defs)
	encode := func(key string, e *entity) { b.add(defs, n, key, e) }
	write := func() error { return s.writeEntities(filter, b) }
	werr := s.ws.eachFlushingShard(encode, write)
	if werr == nil {
		werr = s.writeChunk(filter, nil, &mark)
	}
	if cap(b.keys)+cap(b.values) > maxFlushBufs {
		*b = flushBufs{} // one large flush (after a backfill) does not pin its memory
	}
	s.ws.flushed(werr == nil)
	if werr != nil {
		return fmt.Errorf("flush feature windows: %w", werr)
	}
	return nil
}

// writeChunk writes entities of a flush in one write batch and, if
// watermark is not nil, the watermark after them.
func (s *Store) writeChunk(filter *storedFilter, chunk []flushEntry, watermark *uint64) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, e := range chunk {
		// Into the filter before Badger has it: the filter may say
		// "maybe" for a key not written, never "no" for one that was.
		filter.add(e.key[len(prefixEntity):])
		if err := wb.SetEntry(badger.NewEntry(e.key, e.value).WithTTL(e.ttl)); err != nil {
			return err
		}
	}
	if watermark != nil {
		if err := wb.Set([]byte(keyWatermark), binary.BigEndian.AppendUint64(nil, *watermark)); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// flushChunk is how many entities a flush writes in one batch: about a
// millisecond of Badger's writer.
const flushChunk = 256

// flushBufs are the encoding buffers of a flush, kept for the next one.
type flushBufs struct {
	entries      []flushEntry
	keys, values []byte
}

type flushEntry struct {
	key, value []byte
	ttl        time.Duration
}

// add encodes e under key, unless none of its features is live (only
// deleted or redefined ones: the stored copy expires by TTL).
func (b *flushBufs) add(defs *featureSet, n *names, key string, e *entity) {
	ttl := e.live(defs)
	if ttl == 0 {
		return
	}
	k, v := len(b.keys), len(b.values)
	b.keys = append(append(b.keys, prefixEntity...), key...)
	b.values = e.encode(b.values, n)
	// Sub-slices stay valid when the buffers grow: the old arrays stay
	// alive until the entries are written.
	b.entries = append(b.entries, flushEntry{key: b.keys[k:len(b.keys):len(b.keys)], value: b.values[v:len(b.values):len(b.values)], ttl: time.Duration(ttl)})
}

// reset empties b, keeping its arrays.
func (b *flushBufs) reset() {
	clear(b.entries) // drop references into buffers that may be replaced
	b.entries, b.keys, b.values = b.entries[:0], b.keys[:0], b.values[:0]
}

// writeEntities writes the entities of b in chunks of flushChunk, one
// after the other, and empties b.
func (s *Store) writeEntities(filter *storedFilter, b *flushBufs) error {
	defer b.reset()
	for rest := b.entries; len(rest) > 0; {
		chunk := rest[:min(len(rest), flushChunk)]
		rest = rest[len(chunk):]
		if err := s.writeChunk(filter, chunk, nil); err != nil {
			return err
		}
	}
	return nil
}

// maxFlushBufs bounds the bytes of flush buffers kept between flushes.
const maxFlushBufs = 16 << 20

// buildFilter replaces the stored-entity filter with one holding every
// entity key in Badger, sized for at least keys keys (and twice what is
// stored). The caller holds flushMu or runs before the flusher starts.
func (s *Store) buildFilter(keys int) error {
	f, err := s.sizeFilter(prefixEntity, max(keys, minFilterKeys), nil)
	if err != nil {
		return fmt.Errorf("count stored entities: %w", err)
	}
	if err := s.scanKeys(prefixEntity, nil, f.add); err != nil {
		return fmt.Errorf("read stored entity keys: %w", err)
	}
	s.stored.Store(f)
	return nil
}

// sizeFilter counts the keys under prefix and returns an empty filter
// sized for at least keys keys and twice what is stored.
func (s *Store) sizeFilter(prefix string, keys int, stop <-chan struct{}) (*storedFilter, error) {
	n := 0
	if err := s.scanKeys(prefix, stop, func([]byte) { n++ }); err != nil {
		return nil, err
	}
	return newStoredFilter(max(keys, 2*n)), nil
}

// scanKeys calls fn with every key under prefix, the prefix cut off, in one
// snapshot, without reading values. It gives up with errClosing once stop
// is closed (nil: never).
func (s *Store) scanKeys(prefix string, stop <-chan struct{}, fn func(key []byte)) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			select {
			case <-stop:
				return errClosing
			default:
			}
			fn(it.Item().Key()[len(prefix):])
		}
		return nil
	})
}

// replay re-applies every decision committed after the last flushed
// watermark: the decision log is the write-ahead log of the features.
func (s *Store) replay(ctx context.Context, skip map[string]bool) error {
	mark, err := s.readUint64([]byte(keyWatermark))
	if err != nil {
		return fmt.Errorf("read feature watermark: %w", err)
	}
	last := mark
	var list []*feature
	for _, f := range s.defs.Load().list {
		if !skip[f.def.Name] {
			list = append(list, f)
		}
	}
	defs := newFeatureSet(list)
	err = s.scanSeq(ctx, mark+1, func(rec *engine.Record) error {
		s.replayApply(rec, defs)
		last = rec.Seq
		return nil
	})
	if err != nil {
		return fmt.Errorf("replay decisions: %w", err)
	}
	// The sequence continues after the highest one stored, even where a
	// record's features were already flushed.
	stored, err := s.lastSeq()
	if err != nil {
		return fmt.Errorf("find last sequence: %w", err)
	}
	last = max(last, stored)
	s.seq = last
	s.applied.Store(last)
	return nil
}
