package review

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
)

// Defaults for Config.
const (
	DefaultClaimTTL     = 15 * time.Minute
	DefaultPollInterval = 250 * time.Millisecond
)

// Decisions is the decision log and its search (features.Store).
type Decisions interface {
	Get(ctx context.Context, decisionID string) (*engine.Record, error)
	Search(ctx context.Context, q engine.Query) ([]*engine.Record, string, error)
	// ScanRecords calls fn for every stored decision with sequence number
	// >= from, in commit order.
	ScanRecords(ctx context.Context, from uint64, fn func(rec *engine.Record) error) error
}

// Feedbacker applies feedback labels (engine.Engine): closing an item or a
// case labels its decisions through it.
type Feedbacker interface {
	Feedback(ctx context.Context, decisionID string, l engine.Label) (engine.FeedbackResult, error)
}

// Config configures a Queue and Cases. DB, Decisions, Feedback and Audit
// are required.
type Config struct {
	// DB holds the items, the cases, the policy and the cursor
	// (features.Store.KV on a single node).
	DB        kv.DB
	Decisions Decisions
	Feedback  Feedbacker
	// Lists receive the entities of a case closed as fraud with a block.
	// nil refuses such a block.
	Lists Lists
	Audit *admin.Audit
	// ClaimTTL is how long a claim holds; zero means DefaultClaimTTL.
	ClaimTTL time.Duration
	// Retention is how long items and cases are kept after their last
	// change, as the decisions (--retention); zero keeps them forever.
	Retention time.Duration
	// PollInterval is how often the queue reads new decisions from the
	// log; zero means DefaultPollInterval.
	PollInterval time.Duration
	// FirstSeq is where a queue with no stored cursor starts reading the
	// log (the sequence number after the last committed decision); nil
	// reads the whole log.
	FirstSeq func() uint64
	// Active, when set, says whether this node reads the decision log: in
	// cluster mode one node at a time does (the leader). Nil always reads.
	Active func() bool
	// OnOpen is called once for every item the queue opens, after it is
	// stored, for the decision.review webhook event (EventReview). It must
	// not block; nil means none.
	OnOpen func(ctx context.Context, it Item)
	// OpenTxn, when set, is called for every item opened inside the
	// transaction that stores it, so what it writes (the decision.review
	// webhook event in the outbox) is stored exactly when the item is, even
	// if the process dies right after. An error aborts the pass, which is
	// repeated.
	OpenTxn func(tx kv.Tx, it Item) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives what cannot be returned; nil discards.
	Log *slog.Logger
}

func (c *Config) defaults() {
	if c.ClaimTTL <= 0 {
		c.ClaimTTL = DefaultClaimTTL
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Queue is the review queue. Create it with NewQueue, call Open to start
// reading the decision log, Close before the store closes. It is safe for
// concurrent use.
type Queue struct {
	cfg    Config
	policy atomic.Pointer[Policy]

	// mu serialises changes to items (claims, closes) and the policy, so
	// two reviewers claiming at once cannot both win.
	mu sync.Mutex
	// syncMu serialises passes over the log.
	syncMu sync.Mutex

	stop chan struct{}
	done chan struct{}
}

// NewQueue returns a queue for cfg. It does no I/O.
func NewQueue(cfg Config) *Queue {
	cfg.defaults()
	q := &Queue{cfg: cfg}
	q.policy.Store(&Policy{})
	return q
}

// Open loads the policy and the cursor (storing one at FirstSeq when there
// is none), then reads the decision log in the background every
// PollInterval until Close.
func (q *Queue) Open(ctx context.Context) error {
	if err := q.Load(ctx); err != nil {
		return err
	}
	q.stop, q.done = make(chan struct{}), make(chan struct{})
	go q.loop()
	return nil
}

// Load loads the policy and makes sure a cursor is stored, without
// starting the background reader; Sync then reads the log.
func (q *Queue) Load(ctx context.Context) error {
	var p Policy
	err := q.cfg.DB.Update(ctx, func(tx kv.Tx) error {
		v, err := tx.Get([]byte(keyPolicy))
		switch {
		case err == nil:
			if err := decodeValue(v, &p); err != nil {
				return fmt.Errorf("decode review policy: %w", err)
			}
		case !errors.Is(err, kv.ErrNotFound):
			return err
		}
		if _, err := tx.Get([]byte(keyCursor)); !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		var first uint64
		if q.cfg.FirstSeq != nil {
			first = q.cfg.FirstSeq()
		}
		return tx.Set([]byte(keyCursor), seqValue(first))
	})
	if err != nil {
		return fmt.Errorf("load review queue: %w", err)
	}
	q.policy.Store(&p)
	return nil
}

// Close stops the background reader and waits for it.
func (q *Queue) Close(ctx context.Context) error {
	if q.stop == nil {
		return nil
	}
	close(q.stop)
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop review queue: %w", ctx.Err())
	}
}

func (q *Queue) loop() {
	defer close(q.done)
	t := time.NewTicker(q.cfg.PollInterval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-q.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		if q.cfg.Active == nil || q.cfg.Active() {
			if _, err := q.Sync(ctx); err != nil && ctx.Err() == nil {
				q.cfg.Log.Error("review queue: read decision log", "err", err)
			}
		}
		select {
		case <-q.stop:
			return
		case <-t.C:
		}
	}
}

func (q *Queue) now() time.Time { return q.cfg.Now().UTC() }

// set stores value under key in tx, to expire Retention after t (an hour
// from now when that has passed already); without Retention it never
// expires.
func (c *Config) set(tx kv.Tx, key, value []byte, t time.Time) error {
	if c.Retention <= 0 {
		return tx.Set(key, value)
	}
	ttl := t.Add(c.Retention).Sub(c.Now())
	if ttl <= 0 {
		ttl = time.Hour
	}
	return tx.SetTTL(key, value, ttl)
}

// Policy returns the review policy in force.
func (q *Queue) Policy() Policy { return *q.policy.Load() }

// SetPolicy validates and stores p; it applies to decisions the queue has
// not read yet. It returns the policy it replaced.
func (q *Queue) SetPolicy(ctx context.Context, p Policy) (Policy, error) {
	if err := p.validate(); err != nil {
		return Policy{}, err
	}
	if p.Rules == nil {
		p.Rules = []PolicyRule{}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	v, err := encodeValue(p)
	if err != nil {
		return Policy{}, err
	}
	if err := kv.Set(ctx, q.cfg.DB, []byte(keyPolicy), v); err != nil {
		return Policy{}, fmt.Errorf("store review policy: %w", err)
	}
	return *q.policy.Swap(&p), nil
}
