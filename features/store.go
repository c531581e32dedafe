package features

import (
	"context"
	"fmt"
	"log/slog"
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

	// kvMu serialises kv.DB Updates; see badgerKV.Update for why.
	kvMu sync.Mutex

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
