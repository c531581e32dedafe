package features

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/riskengine/risk/engine"

	"github.com/riskengine/risk/features/keyspace"
)

// Defaults for Options.
const (
	DefaultFlushInterval = 5 * time.Second
	// labelFlushInterval is how late an entity a label changed is written
	// (flushUrgent), whatever the flush interval.
	labelFlushInterval  = 200 * time.Millisecond
	DefaultCacheEntries = 200_000
	DefaultRetention    = 180 * 24 * time.Hour
	DefaultGCInterval   = 10 * time.Minute
	maxBatch            = 256
	// slowWrite is how long a group commit may take before it is logged.
	slowWrite = 100 * time.Millisecond
)

// Options configure a Store. Zero fields take the defaults above.
type Options struct {
	// Dir is the Badger directory.
	Dir string
	// SyncWrites makes every decision commit fsync before it is
	// acknowledged. Off, a committed decision survives a process crash (it
	// is in the OS page cache) but an OS crash or power loss may lose the
	// last moments of writes.
	SyncWrites bool
	// FlushInterval is how often every changed entity is written to
	// Badger, followed by the watermark. Decisions not yet in the written
	// state are replayed from the decision log on start-up, so this bounds
	// replay work and the memory of changed entities kept beyond the cache
	// budget, not data loss. A label's effect on label-filtered features,
	// which the log cannot replay, is written within labelFlushInterval
	// (200 ms) whatever this is. Longer intervals write each busy entity
	// once for many decisions (docs/performance.md).
	FlushInterval time.Duration
	// CacheEntries bounds how many entity windows are kept in memory; cold
	// ones live only in Badger.
	CacheEntries int
	// Retention is how long decision records are kept (Badger TTL).
	Retention time.Duration
	// GCInterval is how often Badger's value log is garbage collected.
	GCInterval time.Duration
	// CompileFilter compiles feature where expressions.
	CompileFilter FilterCompiler
	// LimitsEntity, when set, keeps the rolling 24-hour spend a Limiter
	// reads, per "account", "card" or "account_merchant" (see
	// ValidLimitsEntity). Empty keeps none and a Limiter cannot be built.
	LimitsEntity string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives background errors; nil discards.
	Log *slog.Logger
}

// Store keeps decision records and the feature windows derived from them in
// Badger. It implements engine.DecisionStore and engine.FeatureSource and is
// safe for concurrent use. Open it before use and Close it after.
type Store struct {
	opts  Options
	db    *badger.DB
	ws    *windows
	names nameTable // numbers of feature names in entity encodings

	// seqMu orders sequence numbers with feature definition changes, so
	// every decision is applied with the definitions that were live when
	// it got its number.
	seqMu sync.Mutex
	seq   uint64
	defs  atomic.Pointer[featureSet]

	// applyMu is held by the committer while it applies a batch to the
	// windows, and by the flusher while it snapshots them, so a flushed
	// snapshot holds exactly the decisions up to applied.
	applyMu sync.Mutex
	applied atomic.Uint64
	commits chan *commitReq
	fresh   []*commitReq          // the committer's scratch list of a batch's new decisions
	inBatch map[string]*commitReq // and its transaction ids
	closing chan struct{}
	closed  atomic.Bool
	wg      sync.WaitGroup
	labelMu sync.Mutex

	backfills sync.Map // feature name -> *Backfill

	// defsMu serialises changes of the feature definitions.
	defsMu sync.Mutex

	// flushMu serialises flushes (the flusher, Close and backfills), so
	// the stored-entity filter is rebuilt while no entity is being written.
	flushMu sync.Mutex
	flushed flushBufs // guarded by flushMu
	stored  atomic.Pointer[storedFilter]
	tables  *tables
	// txIndex is true once a record may be stored under an id other than
	// engine.DecisionID of its transaction (written by an older version,
	// or given its own id by the caller): lookups by transaction id then
	// fall back to the t/ index. Set at Open when t/ keys exist.
	txIndex atomic.Bool
	txf     txFilter
}

var (
	_ engine.DecisionStore = (*Store)(nil)
	_ engine.FeatureSource = (*Store)(nil)
)

type commitReq struct {
	rec  *engine.Record
	data []byte
	tab  *table
	// derived is true when rec.ID is engine.DecisionID of its transaction
	// (set by the committer).
	derived bool
	defs    *featureSet
	dup     *engine.Record // the stored record when rec's transaction was decided before
	done    chan error
}

// Key prefixes in Badger.
const (
	prefixDecision = keyspace.Decision // decision id -> seq + record
	prefixTx       = keyspace.Tx       // transaction id -> decision id, when the id is not derived from it
	prefixSeq      = keyspace.Seq      // seq (8 bytes) -> decision id; no longer written (seqlog.go)
	prefixAccount  = keyspace.Account
	prefixCard     = keyspace.Card
	prefixOutcome  = keyspace.Outcome
	prefixTime     = keyspace.Time   // no longer written (Search merges the outcome indexes); old keys expire
	prefixWindow   = keyspace.Window // feature \0 entity values -> window (before entities; migrated at Open)
	prefixEntity   = keyspace.Entity // entity spec \0 entity values -> entity (entity.go)
	keyWatermark   = keyspace.Watermark
	keyDefinitions = keyspace.Definitions
)

// New returns a Store for opts. It does no I/O; call Open.
func New(opts Options) *Store {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.CacheEntries <= 0 {
		opts.CacheEntries = DefaultCacheEntries
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.GCInterval <= 0 {
		opts.GCInterval = DefaultGCInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		opts: opts, commits: make(chan *commitReq, 4*maxBatch), closing: make(chan struct{}),
		inBatch: make(map[string]*commitReq, maxBatch), tables: newTables(),
		txf: txFilter{minKeys: minFilterKeys},
	}
	s.defs.Store(&featureSet{})
	s.registerSpent()
	return s
}

// Open opens Badger, loads the stored feature definitions, replays
// decisions newer than the last feature flush, and starts the background
// committer, flusher and value-log GC.
func (s *Store) Open(ctx context.Context) error {
	bo := badger.DefaultOptions(s.opts.Dir).
		WithSyncWrites(s.opts.SyncWrites).
		WithDetectConflicts(false).
		WithNumVersionsToKeep(1).
		WithMemTableSize(32 << 20).
		WithNumMemtables(3).
		WithBlockCacheSize(64 << 20).
		WithIndexCacheSize(32 << 20).
		// Decision records (a few KB) go to the value log, written once;
		// the LSM tree then holds keys, pointers and small windows, so
		// compaction rewrites little. Tables are left uncompressed: they
		// are mostly keys, and compression was a fifth of compaction CPU.
		WithValueThreshold(1 << 10).
		WithCompression(options.None).
		WithLogger(badgerLogger{s.opts.Log})
	db, err := badger.Open(bo)
	if err != nil {
		return fmt.Errorf("open badger at %s: %w", s.opts.Dir, err)
	}
	s.db = db
	if err := s.loadNames(); err != nil {
		db.Close()
		return err
	}
	s.ws = newWindows(s.opts.CacheEntries, s.loadWindow)
	if err := s.loadDefinitions(); err != nil {
		db.Close()
		return err
	}
	// A backfill cut short by the last shutdown starts again from scratch:
	// its partial state is dropped and the whole history replayed into it.
	pending, err := s.pendingBackfills()
	if err != nil {
		db.Close()
		return fmt.Errorf("read pending backfills: %w", err)
	}
	if err := s.newHidden(pending); err != nil {
		db.Close()
		return err
	}
	if err := s.loadEpochs(pending); err != nil {
		db.Close()
		return err
	}
	if err := s.findTxIndex(); err != nil {
		db.Close()
		return err
	}
	if err := s.migrateWindows(); err != nil {
		db.Close()
		return err
	}
	if err := s.buildFilter(0); err != nil {
		db.Close()
		return err
	}
	if err := s.replay(ctx, pending); err != nil {
		db.Close()
		return err
	}
	for _, f := range s.defs.Load().list {
		if pending[f.def.Name] {
			s.startBackfill(f, s.seq)
		}
	}
	s.wg.Add(3)
	go s.commitLoop()
	go s.flushLoop()
	go s.gcLoop()
	s.startTxFilter(0)
	return nil
}

// Close stops accepting decisions, commits those already queued, flushes
// every feature window and closes Badger. It returns the first error.
func (s *Store) Close(ctx context.Context) error {
	if s.db == nil || !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.closing)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("close feature store: %w", ctx.Err())
	}
	s.backfills.Range(func(_, v any) bool { v.(*Backfill).cancel(); return true })
	// The last flush and Badger's close write to disk, and Badger retries a
	// failed memtable write forever (a full disk, a data dir removed), so
	// they are bounded by ctx too. Leaving them unfinished loses nothing
	// acknowledged: it is the state of a crash, which the next Open
	// recovers from Badger's logs and the decision log.
	closed := make(chan error, 1)
	go func() {
		err := s.flush()
		if cerr := s.db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close badger: %w", cerr)
		}
		closed <- err
	}()
	select {
	case err := <-closed:
		return err
	case <-ctx.Done():
		return fmt.Errorf("close feature store: last flush and close of badger unfinished (the next start recovers as after a crash): %w", ctx.Err())
	}
}

// DB returns the underlying Badger database, for packages that keep their
// own records beside the decisions (admin). Keys they write must not start
// with the prefixes used here: d/, t/, q/, x*/, f/, m/.
func (s *Store) DB() *badger.DB { return s.db }

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

// getByTx reads the record of a transaction id in txn: under its derived
// decision id (engine.DecisionID), or, while some records are not stored
// under theirs, through the t/ index.
func (s *Store) getByTx(txn *badger.Txn, transactionID string) (*engine.Record, error) {
	return s.getByTxID(txn, transactionID, engine.DecisionID(transactionID))
}

// getByTxID is getByTx given the derived decision id.
func (s *Store) getByTxID(txn *badger.Txn, transactionID, id string) (*engine.Record, error) {
	if !s.txIndex.Load() && !s.txf.mayContain(id) {
		return nil, badger.ErrKeyNotFound // never stored: no Badger read
	}
	rec, err := s.getRecord(txn, id)
	switch {
	case err == nil && rec.TransactionID == transactionID:
		return rec, nil
	case err != nil && !errors.Is(err, badger.ErrKeyNotFound):
		return nil, err
	case !s.txIndex.Load():
		return nil, badger.ErrKeyNotFound
	}
	item, err := txn.Get(append([]byte(prefixTx), transactionID...))
	if err != nil {
		return nil, err
	}
	indexed, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	return s.getRecord(txn, string(indexed))
}

// setRecord writes a record and its index keys in txn; derived says its id
// is engine.DecisionID of its transaction.
func (s *Store) setRecord(txn *badger.Txn, rec *engine.Record, data []byte, derived bool) error {
	ttl := s.opts.Retention
	set := func(k, v []byte) error { return txn.SetEntry(badger.NewEntry(k, v).WithTTL(ttl)) }
	id := []byte(rec.ID)
	if err := set(append([]byte(prefixDecision), id...), data); err != nil {
		return err
	}
	if !derived {
		s.txIndex.Store(true)
		if err := set(append([]byte(prefixTx), rec.TransactionID...), id); err != nil {
			return err
		}
	}
	for _, k := range indexKeys(rec) {
		if err := set(k, nil); err != nil {
			return err
		}
	}
	return nil
}

// findTxIndex sets txIndex if any t/ key is stored.
func (s *Store) findTxIndex() error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixTx), PrefetchValues: false})
		defer it.Close()
		it.Rewind()
		if it.Valid() {
			s.txIndex.Store(true)
		}
		return nil
	})
}

// Lookup implements engine.DecisionStore.
func (s *Store) Lookup(ctx context.Context, transactionID string) (*engine.Record, error) {
	var rec *engine.Record
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		rec, err = s.getByTx(txn, transactionID)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("transaction %q: %w", transactionID, engine.ErrNotFound)
	}
	return rec, err
}

// Get returns the record of a decision id, or an error wrapping
// engine.ErrNotFound.
func (s *Store) Get(ctx context.Context, decisionID string) (*engine.Record, error) {
	var rec *engine.Record
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		rec, err = s.getRecord(txn, decisionID)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("decision %q: %w", decisionID, engine.ErrNotFound)
	}
	return rec, err
}

func (s *Store) getRecord(txn *badger.Txn, id string) (*engine.Record, error) {
	item, err := txn.Get(append([]byte(prefixDecision), id...))
	if err != nil {
		return nil, err
	}
	var rec *engine.Record
	err = item.Value(func(v []byte) error {
		var derr error
		rec, derr = decodeRecord(v, func(id tableID) (*table, error) { return s.tables.get(txn, id) })
		return derr
	})
	return rec, err
}

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

func (s *Store) gcLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			for s.db.RunValueLogGC(0.5) == nil {
			}
		case <-s.closing:
			return
		}
	}
}

// Stats are cache and storage figures for metrics.
type Stats struct {
	CacheHits, CacheMisses uint64
	CachedWindows          int // entities in the cache
	LSMBytes, VLogBytes    int64
	LastSeq                uint64
	// CorruptStates counts reads of stored entity states (feature windows,
	// trust) that did not decode since start; each such read degraded a
	// decision or refused an update, and the state was left as stored.
	CorruptStates uint64
}

// Stats returns current figures.
func (s *Store) Stats() Stats {
	lsm, vlog := s.db.Size()
	s.seqMu.Lock()
	seq := s.seq
	s.seqMu.Unlock()
	return Stats{
		CacheHits: s.ws.hits.Load(), CacheMisses: s.ws.misses.Load(), CachedWindows: s.ws.len(),
		LSMBytes: lsm, VLogBytes: vlog, LastSeq: seq, CorruptStates: s.ws.corrupt.Load(),
	}
}

// badgerLogger sends Badger's warnings and errors to slog, and its
// information (memtable flushes, compactions, L0 stalls) at debug level.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(f string, a ...any) {
	l.log.Error(fmt.Sprintf(f, a...), "component", "badger")
}
func (l badgerLogger) Warningf(f string, a ...any) {
	l.log.Warn(fmt.Sprintf(f, a...), "component", "badger")
}
func (l badgerLogger) Infof(f string, a ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(f, a...), "component", "badger")
	}
}
func (l badgerLogger) Debugf(string, ...any) {}
