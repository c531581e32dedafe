package backtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/rules"
)

// Defaults for Config.
const (
	DefaultMaxRunning = 1
	DefaultMaxActive  = 16
	DefaultMaxJobs    = 100
	DefaultSampleSize = 100
	DefaultYieldEvery = 256
)

// ErrBusy is returned by Start when MaxActive backtests are already queued
// or running.
var ErrBusy = errors.New("too many backtests queued or running")

// VersionReader reads published rule set versions (admin.Versions).
type VersionReader interface {
	Get(n int64) (admin.Version, error)
}

// Config configures Backtests. Zero fields take the defaults above.
type Config struct {
	// History is the decision log; required.
	History History
	// Versions reads published versions; nil makes every version
	// candidate not found.
	Versions VersionReader
	// Draft returns the current draft rule set, or an error wrapping
	// engine.ErrNotFound when there is none; nil means drafts are not
	// available and a draft candidate is not found.
	Draft func(ctx context.Context) (rules.Spec, error)
	// Env returns what candidates compile against: the feature names
	// defined now and the live lists (in_list answers from the lists as
	// they are now, not as they were). Feature names the replayed history
	// recorded are added. nil means no features and no lists.
	Env func() rules.Env
	// MaxRunning bounds the backtests replaying at once; each runs on one
	// goroutine, so this bounds the processors backtests take from live
	// decisions. Further backtests wait, queued, and start in the order
	// they were accepted.
	MaxRunning int
	// MaxActive bounds queued plus running backtests; Start refuses more
	// with ErrBusy.
	MaxActive int
	// MaxJobs bounds the backtests kept in memory; the oldest finished
	// ones are forgotten first.
	MaxJobs int
	// SampleSize bounds the flipped decisions a result lists.
	SampleSize int
	// YieldEvery is how many decisions a backtest reads between yields of
	// its processor.
	YieldEvery int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives failed backtests; nil discards.
	Log *slog.Logger

	// Store, when set, keeps every backtest's status where other nodes
	// (and this one after a restart) read it: see shared.go. nil keeps
	// them in this process's memory only.
	Store kv.DB
	// Heartbeat is how often a queued or running backtest's status is
	// written (DefaultHeartbeat); StaleAfter how long a status may go
	// unwritten before readers report it failed (DefaultStaleAfter);
	// KeepFor how long a status is kept (DefaultKeepFor).
	Heartbeat  time.Duration
	StaleAfter time.Duration
	KeepFor    time.Duration
}

// State is where a backtest is in its life.
type State string

// Backtest states. Done, cancelled and failed are final.
const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateDone      State = "done"
	StateCancelled State = "cancelled"
	StateFailed    State = "failed"
)

// Status is a snapshot of one backtest.
type Status struct {
	ID         string         `json:"id"`
	State      State          `json:"state"`
	Candidate  CandidateInfo  `json:"candidate"`
	From       time.Time      `json:"from"`
	To         time.Time      `json:"to"`
	MerchantID string         `json:"merchant_id,omitempty"`
	Decision   engine.Outcome `json:"decision,omitempty"`
	CreatedBy  string         `json:"created_by"`
	CreatedAt  time.Time      `json:"created_at"`
	StartedAt  time.Time      `json:"started_at,omitzero"`
	FinishedAt time.Time      `json:"finished_at,omitzero"`
	Progress   Progress       `json:"progress"`
	// Error is set when the backtest failed; the cause is logged with the
	// backtest id.
	Error string `json:"error,omitempty"`
	// Result is set once the backtest is done.
	Result *Result `json:"result,omitempty"`
}

// Progress counts the decision log entries read. Total is fixed when the
// backtest starts: decisions made after that are not replayed. Entries in
// the read part of the log that fall outside the time range or filters
// count as processed.
type Progress struct {
	Processed int64 `json:"processed"`
	Total     int64 `json:"total"`
}

// Backtests runs backtests in the background and keeps their status and
// results in memory, and in Config.Store when one is set. It is safe for
// concurrent use. Close it before closing the History's store.
type Backtests struct {
	cfg  Config
	stop context.CancelFunc // ends the heartbeat

	mu      sync.Mutex
	jobs    map[string]*job
	order   []*job // acceptance order, which is also the start order
	running int
	closed  bool
	wg      sync.WaitGroup
}

type job struct {
	id        string
	plan      *plan
	createdBy string
	createdAt time.Time
	processed atomic.Int64
	saveMu    sync.Mutex // one save of the shared status at a time

	// Guarded by Backtests.mu.
	cancel     context.CancelFunc // set once running
	state      State
	startedAt  time.Time
	finishedAt time.Time
	err        error
	result     *Result
}

// New returns Backtests for cfg. It starts nothing.
func New(cfg Config) *Backtests {
	if cfg.MaxRunning <= 0 {
		cfg.MaxRunning = DefaultMaxRunning
	}
	if cfg.MaxActive <= 0 {
		cfg.MaxActive = DefaultMaxActive
	}
	if cfg.MaxJobs <= 0 {
		cfg.MaxJobs = DefaultMaxJobs
	}
	if cfg.SampleSize <= 0 {
		cfg.SampleSize = DefaultSampleSize
	}
	if cfg.YieldEvery <= 0 {
		cfg.YieldEvery = DefaultYieldEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.KeepFor <= 0 {
		cfg.KeepFor = DefaultKeepFor
	}
	b := &Backtests{cfg: cfg, jobs: map[string]*job{}, stop: func() {}}
	if cfg.Store != nil {
		ctx, stop := context.WithCancel(context.Background())
		b.stop = stop
		b.wg.Add(1)
		go b.heartbeat(ctx)
	}
	return b
}

// failedText is a failed backtest's error for clients: the cause is log
// text, not client text.
const failedText = "the backtest failed; the server log has the cause"

// Run replays req synchronously on the calling goroutine, at its normal
// priority, and returns the result. Start is the background form the API
// uses: it runs at low priority and within MaxRunning.
func (b *Backtests) Run(ctx context.Context, req Request) (*Result, error) {
	p, err := b.prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	return b.replay(ctx, p, nil)
}

// Start validates req, compiles its candidate and queues the backtest. It
// returns the new backtest's status at once. Bad requests return a
// *engine.FieldError, an unknown version or missing draft an error
// wrapping engine.ErrNotFound, a candidate that does not compile a
// *rules.CompileError; too many active backtests ErrBusy.
func (b *Backtests) Start(ctx context.Context, req Request) (Status, error) {
	p, err := b.prepare(ctx, req)
	if err != nil {
		return Status{}, err
	}
	now := b.cfg.Now()
	j := &job{
		id: engine.NewID("bt_", now), plan: p, createdBy: engine.Actor(ctx), createdAt: now.UTC(),
		state: StateQueued,
	}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return Status{}, fmt.Errorf("backtests are shutting down: %w", engine.ErrUnavailable)
	}
	active := 0
	for _, o := range b.order {
		if o.state == StateQueued || o.state == StateRunning {
			active++
		}
	}
	if active >= b.cfg.MaxActive {
		b.mu.Unlock()
		return Status{}, ErrBusy
	}
	b.jobs[j.id] = j
	b.order = append(b.order, j)
	b.forget()
	b.dispatch()
	st := j.status()
	b.mu.Unlock()
	if b.cfg.Store != nil {
		b.saveLogged(j)
	}
	return st, nil
}

// dispatch starts queued backtests, in the order they were accepted, while
// fewer than MaxRunning run. Called with b.mu held.
func (b *Backtests) dispatch() {
	for _, j := range b.order {
		if b.running >= b.cfg.MaxRunning || b.closed {
			return
		}
		if j.state != StateQueued {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		j.state, j.startedAt, j.cancel = StateRunning, b.cfg.Now().UTC(), cancel
		b.running++
		b.wg.Add(1)
		go b.run(ctx, j)
	}
}

// run replays one backtest at low thread priority on its own goroutine,
// records the outcome and starts the next queued backtest.
func (b *Backtests) run(ctx context.Context, j *job) {
	defer b.wg.Done()
	if err := lowerPriority(); err != nil {
		b.cfg.Log.Warn("backtest runs at normal priority", "backtest", j.id, "err", err)
	}
	if b.cfg.Store != nil {
		b.saveLogged(j)
	}
	res, err := b.replay(ctx, j.plan, &j.processed)
	b.mu.Lock()
	j.cancel()
	b.running--
	b.finish(j, res, err)
	b.dispatch()
	b.mu.Unlock()
	if b.cfg.Store != nil {
		b.saveLogged(j)
	}
}

// finish records the outcome of a backtest. Called with b.mu held.
func (b *Backtests) finish(j *job, res *Result, err error) {
	j.finishedAt = b.cfg.Now().UTC()
	switch {
	case j.state == StateCancelled || errors.Is(err, context.Canceled):
		j.state = StateCancelled
	case err != nil:
		j.state, j.err = StateFailed, err
		b.cfg.Log.Error("backtest failed", "backtest", j.id, "err", err)
	default:
		j.state, j.result = StateDone, res
	}
}

// Get returns the status of a backtest, or an error wrapping
// engine.ErrNotFound.
func (b *Backtests) Get(id string) (Status, error) {
	b.mu.Lock()
	j := b.jobs[id]
	var st Status
	if j != nil {
		st = j.status()
	}
	b.mu.Unlock()
	switch {
	case j != nil:
		return st, nil
	case b.cfg.Store != nil:
		ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
		defer cancel()
		return b.getStored(ctx, id)
	}
	return Status{}, fmt.Errorf("backtest %q: %w", id, engine.ErrNotFound)
}

// readTimeout bounds a read of the shared status.
const readTimeout = 5 * time.Second

// List returns the status of every backtest kept, newest first, without
// results.
//
// With a Config.Store it lists the newest MaxJobs of every node, this
// node's own from memory (the freshest); a failed read of the store is an
// error.
func (b *Backtests) List() ([]Status, error) {
	b.mu.Lock()
	out := make([]Status, 0, len(b.order))
	for i := len(b.order) - 1; i >= 0; i-- {
		s := b.order[i].status()
		s.Result = nil
		out = append(out, s)
	}
	b.mu.Unlock()
	if b.cfg.Store == nil {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	stored, err := b.listStored(ctx)
	if err != nil {
		return nil, err
	}
	return mergeNewestFirst(out, stored, b.cfg.MaxJobs), nil
}

// Cancel stops a queued or running backtest and returns its status, now
// cancelled; a finished backtest is left as it is. An unknown id returns
// an error wrapping engine.ErrNotFound.
//
// With a Config.Store, a backtest another node runs is cancelled there at
// its next heartbeat; the answer already says cancelled.
func (b *Backtests) Cancel(id string) (Status, error) {
	b.mu.Lock()
	j := b.jobs[id]
	var st Status
	if j != nil {
		b.cancelLocked(j)
		st = j.status()
	}
	b.mu.Unlock()
	switch {
	case j != nil && b.cfg.Store != nil:
		b.saveLogged(j)
		return st, nil
	case j != nil:
		return st, nil
	case b.cfg.Store != nil:
		ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
		defer cancel()
		return b.cancelStored(ctx, id)
	}
	return Status{}, fmt.Errorf("backtest %q: %w", id, engine.ErrNotFound)
}

// cancelLocked cancels j if it is queued or running. Called with b.mu held.
func (b *Backtests) cancelLocked(j *job) {
	switch j.state {
	case StateQueued:
		j.state, j.finishedAt = StateCancelled, b.cfg.Now().UTC()
	case StateRunning:
		j.state = StateCancelled // final once run sees the cancellation
		j.cancel()
	}
}

// Close cancels every backtest and waits until they have stopped, or ctx
// ends. Start fails after Close.
func (b *Backtests) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	var queued []*job
	for _, j := range b.order {
		switch j.state {
		case StateQueued:
			j.state, j.finishedAt = StateCancelled, b.cfg.Now().UTC()
			queued = append(queued, j)
		case StateRunning:
			j.cancel()
		}
	}
	b.mu.Unlock()
	b.stop()
	if b.cfg.Store != nil {
		for _, j := range queued {
			b.saveLogged(j)
		}
	}
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close backtests: %w", ctx.Err())
	}
}

// forget drops the oldest finished backtests beyond MaxJobs. Called with
// b.mu held.
func (b *Backtests) forget() {
	for i := 0; len(b.order) > b.cfg.MaxJobs && i < len(b.order); {
		j := b.order[i]
		if j.state == StateQueued || j.state == StateRunning {
			i++
			continue
		}
		delete(b.jobs, j.id)
		b.order = append(b.order[:i], b.order[i+1:]...)
	}
}

// status snapshots j. Called with Backtests.mu held.
func (j *job) status() Status {
	p := j.plan
	s := Status{
		ID: j.id, State: j.state, Candidate: p.candidate, From: p.req.From.UTC(), To: p.req.To.UTC(),
		MerchantID: p.req.MerchantID, Decision: p.req.Decision, CreatedBy: j.createdBy, CreatedAt: j.createdAt,
		StartedAt: j.startedAt, FinishedAt: j.finishedAt,
		Progress: Progress{Processed: j.processed.Load(), Total: int64(p.end - p.first)},
		Result:   j.result,
	}
	if j.err != nil {
		s.Error = failedText
	}
	return s
}
