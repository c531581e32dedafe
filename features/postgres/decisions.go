package postgres

// The decision log on PostgreSQL: Decisions implements the engine's
// DecisionStore and Labeler and the readers the server and the review
// queue use. Commits go through one committer goroutine per node that
// writes whatever arrived meanwhile in one transaction (group commit).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/riskengine/risk/engine"
)

var (
	_ engine.DecisionStore = (*Decisions)(nil)
	_ engine.Labeler       = (*Decisions)(nil)
)

// ErrNotFound marks a decision or transaction id that is not stored. It
// wraps engine.ErrNotFound.
var ErrNotFound = fmt.Errorf("decision %w", engine.ErrNotFound)

// Defaults of DecisionOptions.
const (
	DefaultMaxBatch      = 256
	DefaultWriteTimeout  = 10 * time.Second
	DefaultMaintainEvery = time.Hour
)

// DecisionOptions configure NewDecisions. The zero value is usable.
type DecisionOptions struct {
	// MaxBatch bounds how many commits share one transaction; 0 is
	// DefaultMaxBatch.
	MaxBatch int
	// Log receives what no caller can be told (a failed maintenance run);
	// nil discards.
	Log *slog.Logger
	// Retention is how long decisions are kept: the maintenance run drops
	// the monthly partitions wholly older than now minus Retention. 0 keeps
	// everything.
	Retention time.Duration
	// WriteTimeout bounds the transaction of one batch, which serves many
	// callers and so does not run under any one caller's ctx; 0 is
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// MaintainEvery is how often the partitions ahead are created and, with
	// Retention, old ones dropped; the first run is at start. 0 is
	// DefaultMaintainEvery; negative turns the background run off (call
	// Maintain yourself).
	MaintainEvery time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Decisions is the decision log in PostgreSQL, shared by every node of a
// cluster. It is safe for concurrent use. Create it with NewDecisions and
// stop it with Close.
type Decisions struct {
	db      *DB
	o       DecisionOptions
	commits chan *commitReq
	stop    chan struct{} // closed by Close: the committer drains and exits
	exited  chan struct{} // closed when the committer has exited
	closed  atomic.Bool
	wg      sync.WaitGroup
	stats   struct{ commits, batches, duplicates, failed atomic.Uint64 }

	// recent keeps the newest decoded documents for ScanRecords.
	recent *recentRecords

	// months is the committer's set of months known to have a partition
	// (first day of the month, UTC); only the committer goroutine uses it.
	months map[time.Time]bool

	// Test hooks, set through export_test.go before the first commit.
	beforeBatch func(n int) // called with the batch size before it is written
	queued      func()      // called after a commit was queued
	// skipPartitions leaves every row to the default partition.
	skipPartitions bool
}

// DecisionStats counts what the committer did since NewDecisions.
type DecisionStats struct {
	// Commits is the number of commits written (new decisions and
	// duplicates answered), Batches the number of transactions that wrote
	// them: Commits/Batches is the mean batch size.
	Commits, Batches uint64
	// Duplicates counts commits answered with a *engine.DuplicateError.
	Duplicates uint64
	// Failed counts batches whose transaction failed.
	Failed uint64
}

// commitReq is one queued commit.
type commitReq struct {
	rec  *engine.Record
	doc  []byte // the record document, encoded by the caller
	done chan error
	// state moves from pending to taken (by the committer) or abandoned
	// (by a caller whose ctx ended first): an abandoned commit is never
	// written.
	state atomic.Int32
	dup   *engine.Record
}

const (
	reqPending int32 = iota
	reqTaken
	reqAbandoned
)

// NewDecisions returns the decision log on db and starts its committer
// and, unless turned off, its maintenance run. It does no I/O itself.
func NewDecisions(db *DB, o DecisionOptions) *Decisions {
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaintainEvery == 0 {
		o.MaintainEvery = DefaultMaintainEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	d := &Decisions{
		db: db, o: o,
		commits: make(chan *commitReq, o.MaxBatch),
		stop:    make(chan struct{}),
		exited:  make(chan struct{}),
		months:  map[time.Time]bool{},
		recent:  newRecentRecords(),
	}
	d.wg.Add(1)
	go d.commitLoop()
	if o.MaintainEvery > 0 {
		d.wg.Add(1)
		go d.maintainLoop()
	}
	return d
}

// Close stops taking commits, writes those already queued and waits for
// the goroutines, or until ctx ends. It does not close db.
func (d *Decisions) Close(ctx context.Context) error {
	if d.closed.Swap(true) {
		return nil
	}
	close(d.stop)
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close decisions: %w", ctx.Err())
	}
}

// Stats returns the committer's counters.
func (d *Decisions) Stats() DecisionStats {
	return DecisionStats{
		Commits: d.stats.commits.Load(), Batches: d.stats.batches.Load(),
		Duplicates: d.stats.duplicates.Load(), Failed: d.stats.failed.Load(),
	}
}

// Commit implements engine.DecisionStore: it stores rec with the next
// sequence number (set in rec.Seq) and returns once the transaction that
// wrote it has committed. A transaction id already stored, by this node or
// another, or twice in one batch, is written nowhere and answered with a
// *engine.DuplicateError holding the stored record. A failed batch fails
// every commit in it.
//
// When ctx ends first Commit returns its error. A commit not yet taken into
// a batch is then never written; one already being written may still be
// stored, and a retry of it is answered with the DuplicateError.
func (d *Decisions) Commit(ctx context.Context, rec *engine.Record) error {
	if d.closed.Load() {
		return fmt.Errorf("decision log is closing: %w", engine.ErrUnavailable)
	}
	doc, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	if err := checkStorable(rec, doc); err != nil {
		return err
	}
	req := &commitReq{rec: rec, doc: doc, done: make(chan error, 1)}
	select {
	case d.commits <- req:
	case <-d.stop:
		return fmt.Errorf("decision log is closing: %w", engine.ErrUnavailable)
	case <-ctx.Done():
		return fmt.Errorf("queue decision: %w", ctx.Err())
	}
	if d.queued != nil {
		d.queued()
	}
	select {
	case err := <-req.done:
		return err
	case <-d.exited:
		// Queued as Close drained the queue: too late to be written.
		if req.state.CompareAndSwap(reqPending, reqAbandoned) {
			return fmt.Errorf("decision log is closing: %w", engine.ErrUnavailable)
		}
		return <-req.done
	case <-ctx.Done():
		if req.state.CompareAndSwap(reqPending, reqAbandoned) {
			return fmt.Errorf("queue decision: %w", ctx.Err())
		}
		// Taken: the result may already be there.
		select {
		case err := <-req.done:
			return err
		default:
			return fmt.Errorf("commit decision: %w", ctx.Err())
		}
	}
}

// commitLoop is the node's one writer of decisions: it takes the queued
// commits in batches and writes each batch in one transaction.
func (d *Decisions) commitLoop() {
	defer d.wg.Done()
	defer close(d.exited)
	batch := make([]*commitReq, 0, d.o.MaxBatch)
	for {
		var first *commitReq
		select {
		case first = <-d.commits:
		case <-d.stop:
			// Write what was queued before Close.
			for {
				batch = batch[:0]
				d.fill(&batch)
				if len(batch) == 0 {
					return
				}
				d.writeBatch(batch)
			}
		}
		batch = append(batch[:0], first)
		if len(d.commits) == 0 {
			// Let decisions being evaluated on other goroutines queue
			// theirs first; an idle node loses nothing.
			runtime.Gosched()
		}
		d.fill(&batch)
		d.writeBatch(batch)
	}
}

// fill adds queued commits to batch up to MaxBatch without waiting.
func (d *Decisions) fill(batch *[]*commitReq) {
	for len(*batch) < d.o.MaxBatch {
		select {
		case r := <-d.commits:
			*batch = append(*batch, r)
		default:
			return
		}
	}
}

// writeBatch writes the commits of batch its callers still wait for and
// answers each.
func (d *Decisions) writeBatch(batch []*commitReq) {
	live := batch[:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(reqPending, reqTaken) {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	if d.beforeBatch != nil {
		d.beforeBatch(len(live))
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.o.WriteTimeout)
	defer cancel()
	d.ensureMonths(ctx, live)
	err := d.insertBatch(ctx, live)
	if err != nil && pgconn.SafeToRetry(err) {
		// Nothing reached the server (a pooled connection found dead):
		// once more, on another connection.
		err = d.insertBatch(ctx, live)
	}
	if isPartitionViolation(err) {
		// A partition was attached by another node while this batch was
		// routed to the default one: route it again.
		clear(d.months)
		d.ensureMonths(ctx, live)
		err = d.insertBatch(ctx, live)
	}
	d.stats.batches.Add(1)
	if err != nil {
		d.stats.failed.Add(1)
		err = fmt.Errorf("write decisions: %w", err)
	}
	for _, r := range live {
		d.stats.commits.Add(1)
		switch {
		case err != nil:
			r.done <- err
		case r.dup != nil:
			d.stats.duplicates.Add(1)
			r.done <- &engine.DuplicateError{Stored: r.dup}
		default:
			r.done <- nil
		}
	}
}

// ensureMonths makes sure the months of the batch have partitions. A
// failure is logged, not returned: the default partition takes the rows.
func (d *Decisions) ensureMonths(ctx context.Context, batch []*commitReq) {
	if d.skipPartitions {
		return
	}
	for _, r := range batch {
		m := monthOf(r.rec.EvaluatedAt)
		if d.months[m] {
			continue
		}
		if err := d.ensurePartition(ctx, m); err != nil {
			d.o.Log.Warn("create decision partition", "month", m.Format("2006-01"), "err", err)
			continue
		}
		d.months[m] = true
	}
}

// maintainLoop runs Maintain at start and then every MaintainEvery.
func (d *Decisions) maintainLoop() {
	defer d.wg.Done()
	t := time.NewTicker(d.o.MaintainEvery)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		go func() { // stop waiting on PostgreSQL when closing
			select {
			case <-d.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := d.Maintain(ctx); err != nil && !errors.Is(err, context.Canceled) {
			d.o.Log.Error("decision log maintenance", "err", err)
		}
		cancel()
		select {
		case <-t.C:
		case <-d.stop:
			return
		}
	}
}
