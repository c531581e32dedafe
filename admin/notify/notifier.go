package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/kv"
)

// Defaults for Config.
const (
	DefaultPollInterval  = 250 * time.Millisecond
	DefaultTimeout       = 5 * time.Second
	DefaultRetryBase     = 5 * time.Second
	DefaultMaxRetryDelay = time.Hour
	DefaultMaxRetryAge   = 24 * time.Hour
	DefaultRetention     = 7 * 24 * time.Hour
	// MaxHooks bounds how many webhooks may exist; each delivers on at
	// most one goroutine at a time.
	MaxHooks = 50
	// chunk is how many decisions one transaction of the log reader
	// covers.
	chunk = 512
)

// Decisions is the decision log (features.Store).
type Decisions interface {
	// ScanRecords calls fn for every stored decision with sequence number
	// >= from, in commit order.
	ScanRecords(ctx context.Context, from uint64, fn func(rec *engine.Record) error) error
}

// Config configures a Notifier. DB, Decisions and Audit are required.
type Config struct {
	// DB holds the webhooks, the outbox, the events, the deliveries log
	// and the cursors (features.Store.KV on a single node).
	DB        kv.DB
	Decisions Decisions
	Audit     *admin.Audit
	// PublicURL is where the console is reached (--public-url); decision
	// events carry PublicURL + /console/decisions/{id}. Empty leaves
	// console_url out.
	PublicURL string
	// AllowPrivate lets webhooks reach loopback, private and link-local
	// addresses (--webhook-allow-private).
	AllowPrivate bool
	// FirstSeq is where a notifier with no stored cursor starts reading
	// the decision log; nil reads the whole log.
	FirstSeq func() uint64
	// OnRecord, when set, is called with every decision read from the log,
	// on the reader's goroutine, after its events are in the outbox (alert
	// and canary statistics). It must be quick.
	OnRecord func(rec *engine.Record)
	// PollInterval is how often the log and the outbox are read; zero
	// means DefaultPollInterval.
	PollInterval time.Duration
	// Timeout bounds one delivery attempt; zero means DefaultTimeout.
	Timeout time.Duration
	// RetryBase is the delay after the first failed attempt, doubled for
	// every further one up to MaxRetryDelay, with jitter; zero means
	// DefaultRetryBase.
	RetryBase     time.Duration
	MaxRetryDelay time.Duration
	// MaxRetryAge is how long an event is retried after it was created;
	// zero means DefaultMaxRetryAge (24 h).
	MaxRetryAge time.Duration
	// Retention is how long events and the deliveries log are kept; zero
	// means DefaultRetention.
	Retention time.Duration
	// Resolver resolves webhook hosts at creation; nil means
	// net.DefaultResolver.
	Resolver Resolver
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives what cannot be returned; nil discards.
	Log *slog.Logger
	// Active, when set, says whether this node reads the logs and delivers:
	// in cluster mode one node at a time does (the leader). Nil always does.
	Active func() bool
}

func (c *Config) defaults() {
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.RetryBase <= 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.MaxRetryDelay <= 0 {
		c.MaxRetryDelay = DefaultMaxRetryDelay
	}
	if c.MaxRetryAge <= 0 {
		c.MaxRetryAge = DefaultMaxRetryAge
	}
	if c.Retention <= 0 {
		c.Retention = DefaultRetention
	}
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Notifier keeps the webhooks, reads the decision log and the audit trail
// into its outbox, and delivers it. Create it with New, call Open, and
// Close before the store closes. It is safe for concurrent use.
type Notifier struct {
	cfg    Config
	client *http.Client

	hooks  atomic.Pointer[[]Hook] // every hook, sorted by id
	hookMu sync.Mutex             // serialises hook changes

	syncMu sync.Mutex // serialises passes over the log

	busyMu sync.Mutex
	busy   map[string]bool // hook id -> a delivery goroutine runs

	wake chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup

	delivered, failed, gaveUp atomic.Uint64
}

// DeliveryStats counts delivery attempts since start, for the metrics.
type DeliveryStats struct {
	Delivered uint64 // attempts answered 2xx
	Failed    uint64 // attempts that failed (retried or given up)
	GaveUp    uint64 // events given up after MaxRetryAge
}

// Stats returns the delivery counts since start. Safe for concurrent use.
func (n *Notifier) Stats() DeliveryStats {
	return DeliveryStats{Delivered: n.delivered.Load(), Failed: n.failed.Load(), GaveUp: n.gaveUp.Load()}
}

// New returns a Notifier for cfg. It does no I/O.
func New(cfg Config) *Notifier {
	cfg.defaults()
	tr := &http.Transport{
		Proxy:                 nil, // never through an environment proxy: the dialer's checks must see the receiver
		DialContext:           newDialer(cfg.AllowPrivate).DialContext,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	n := &Notifier{
		cfg: cfg,
		client: &http.Client{
			Transport: tr, Timeout: cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		busy: map[string]bool{},
		wake: make(chan struct{}, 1),
	}
	empty := []Hook{}
	n.hooks.Store(&empty)
	return n
}

// Load reads the webhooks and makes sure both cursors are stored, without
// starting the background work; Sync and Deliver then run a pass.
func (n *Notifier) Load(ctx context.Context) error {
	hooks, err := n.loadHooks(ctx)
	if err != nil {
		return err
	}
	n.hooks.Store(&hooks)
	last, err := n.cfg.Audit.LastID()
	if err != nil {
		return err
	}
	err = n.cfg.DB.Update(ctx, func(tx kv.Tx) error {
		if _, err := tx.Get([]byte(keyCursor)); errors.Is(err, kv.ErrNotFound) {
			var first uint64
			if n.cfg.FirstSeq != nil {
				first = n.cfg.FirstSeq()
			}
			if err := tx.Set([]byte(keyCursor), u64(first)); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		if _, err := tx.Get([]byte(keyAuditCursor)); errors.Is(err, kv.ErrNotFound) {
			return tx.Set([]byte(keyAuditCursor), u64(uint64(last)))
		} else if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load webhooks: %w", err)
	}
	return nil
}

// Open loads, then reads the logs and delivers in the background until
// Close.
func (n *Notifier) Open(ctx context.Context) error {
	if err := n.Load(ctx); err != nil {
		return err
	}
	n.stop = make(chan struct{})
	n.wg.Add(2)
	go n.readLoop()
	go n.deliverLoop()
	return nil
}

// Close stops the background work and waits for deliveries in flight
// (each bounded by Timeout).
func (n *Notifier) Close(ctx context.Context) error {
	if n.stop == nil {
		return nil
	}
	close(n.stop)
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
		n.client.CloseIdleConnections()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop webhooks: %w", ctx.Err())
	}
}

// nudge wakes the dispatcher without waiting for its next tick.
func (n *Notifier) nudge() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// stopContext is a context cancelled by Close.
func (n *Notifier) stopContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (n *Notifier) readLoop() {
	defer n.wg.Done()
	ctx, cancel := n.stopContext()
	defer cancel()
	t := time.NewTicker(n.cfg.PollInterval)
	defer t.Stop()
	for {
		if n.active() {
			if _, err := n.Sync(ctx); err != nil && ctx.Err() == nil {
				n.cfg.Log.Error("webhooks: read logs", "err", err)
			}
		}
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
	}
}

func (n *Notifier) deliverLoop() {
	defer n.wg.Done()
	ctx, cancel := n.stopContext()
	defer cancel()
	t := time.NewTicker(n.cfg.PollInterval)
	defer t.Stop()
	for {
		if n.active() {
			if err := n.dispatch(ctx, false); err != nil && ctx.Err() == nil {
				n.cfg.Log.Error("webhooks: deliver", "err", err)
			}
		}
		select {
		case <-n.stop:
			return
		case <-t.C:
		case <-n.wake:
		}
	}
}

// active reports whether this node runs the readers and deliveries.
func (n *Notifier) active() bool { return n.cfg.Active == nil || n.cfg.Active() }

func (n *Notifier) now() time.Time { return n.cfg.Now().UTC() }
