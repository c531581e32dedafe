// Package redisstate keeps the behavioural feature state of cluster mode in
// Redis, so that every engine node reads and updates the same windows: N
// decisions on one card recorded on any nodes make the next decision on
// any node see exactly N, with the values a single Badger node computes.
// The window math is features.Calculator's; this package reads, writes
// and versions its states.
//
// Redis holds rebuildable state only: PostgreSQL's decision log is the
// system of record, and Rebuild derives every state from it.
//
// # Keys
//
// Every key starts with Options.Prefix. The key of an entity's state has
// the hash tag {prefix:key}, where key is the features.StateKey text (the
// group's definition hash, the entity spec and its values), so every key
// a script touches is legal on Redis Cluster:
//
//	{prefix:key}:s   the entity's state (below)
//	{prefix}:built   hash: group ID -> unix time its rebuild finished
//
// A state lives for the longest window of its group plus Options.Margin
// after its last write, so Redis stays bounded without a sweeper: one key
// per entity and group, whatever the number of decisions. Redis must not
// evict keys under memory pressure (maxmemory-policy noeviction): an
// evicted state would read as fewer events, silently.
//
// A state's value is an 8-byte header (a format byte, then a 7-byte
// version that every write increments), the counted transactions below,
// and the window encoding of features.Calculator. Values written before
// the format byte existed (format 0: no counted transactions) still
// decode; they read as a ring that dropped its entries.
//
// # Counted transactions
//
// Record is idempotent per transaction id, and a label's late effect is
// counted once, because each state remembers what it counted: a ring of
// the transactions counted into it most recently, each as a 64-bit hash
// of its id, how many labels it had then, and when it was counted. The
// ring keeps the last 64 transactions counted within 24 hours; older ones
// are dropped at the next write. A write reads the state, leaves out what
// the ring says is counted, and writes the new state and ring if the
// header is still what it read; otherwise it reads again. So a repeated
// Record costs one read, and there are no keys per transaction.
//
// What the ring has dropped it cannot vouch for. Beyond the bounds:
//
//   - a retry of a decision that arrives after more than 64 later
//     decisions of the same entity, or more than 24 hours after it was
//     counted, is counted again into that entity's state. On a hot entity
//     (a merchant taking hundreds of payments a second) 64 decisions may
//     be well under a second of traffic;
//   - a decision recorded again with labels (a label added, see Record)
//     that its state's ring no longer holds is taken as counted with all
//     but its newest label, so only that label's late effect is counted:
//     right for a label, which is recorded once per label, however late.
//     A retry of a labelled decision beyond the bounds counts its newest
//     label's effect again; a label recorded while a Rebuild builds the
//     state, before the rebuild reaches the decision, leaves the decision
//     itself uncounted in that state;
//   - a Rebuild keeps in each state the highest decision sequence number
//     it counted into it, and skips the decisions at or below it, so a
//     Rebuild resumed or run on two nodes counts each decision once
//     however many the entity has. A decision recorded live while a
//     Rebuild runs is skipped by the Rebuild only while its entity's ring
//     still holds it: more than 64 live decisions on one entity before
//     the scan reaches them count the first ones twice.
//
// Record and Rebuild never count twice a transaction the ring holds.
//
// # Definition changes
//
// A group's hash covers every definition of the group, so a changed
// definition names all the group's states anew: they start empty, and
// the group's features read not ready until {prefix}:built lists the new
// hash, which Rebuild writes once it has replayed the decision log into
// the new states. Groups whose definitions did not change keep their
// states and stay ready. Features checks the built hash on every read, so
// a rebuild finished by any node makes the values ready on all of them.
package redisstate

import (
	"context"
	"fmt"
	lru "github.com/hashicorp/golang-lru/v2"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/redis/go-redis/v9"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
)

// Defaults for Options.
const (
	// DefaultReadTimeout bounds a Features call.
	DefaultReadTimeout = 200 * time.Millisecond
	// DefaultWriteTimeout bounds a Record call, retries included: the
	// decision waits for it, so a Redis that hangs costs it this much.
	DefaultWriteTimeout = time.Second
	// DefaultMaxAttempts is how many times Record re-reads a state that
	// another node changed between its read and its write.
	DefaultMaxAttempts = 64
	// DefaultMargin is added to every key's lifetime, for clock skew
	// between nodes and late arrivals.
	DefaultMargin = time.Hour
)

// Options configure a Store. Zero fields take the defaults above.
type Options struct {
	// Prefix starts every key, so several engines (or tests) share one
	// Redis. Required; it may not hold '{' or '}'.
	Prefix string
	// Definitions are the initial feature definitions.
	Definitions []features.Definition
	// CompileFilter compiles where expressions.
	CompileFilter features.FilterCompiler
	// LimitsEntity keeps the hidden daily spend (see Store.Spent), as
	// features.Options.LimitsEntity does.
	LimitsEntity string
	// ReadTimeout bounds Features; WriteTimeout bounds Record. The client
	// must honour context deadlines (ClientOptions sets
	// ContextTimeoutEnabled) or its own socket timeouts bound them instead.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// MaxAttempts bounds the optimistic retries of one write.
	MaxAttempts int
	// Margin is added to the lifetime of states.
	Margin time.Duration
	// Now is the clock (Rebuild skips decisions older than the longest
	// window before it; a state forgets the transactions it counted 24
	// hours before it); nil means time.Now.
	Now func() time.Time
	// Log receives what Record cannot return; nil discards.
	Log *slog.Logger
}

// ClientOptions returns go-redis options for addrs (one address for a
// single Redis, several for a Cluster) with timeouts suited to the
// decision path: a call never waits on a dead or slow server for longer
// than its context allows.
func ClientOptions(addrs ...string) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs:                 addrs,
		DialTimeout:           time.Second,
		ReadTimeout:           500 * time.Millisecond,
		WriteTimeout:          500 * time.Millisecond,
		ContextTimeoutEnabled: true,
		MaxRetries:            1,
	}
}

// Store is the feature state of a cluster of engine nodes, in Redis. It
// implements engine.FeatureSource and is safe for concurrent use. It owns
// no goroutines; the client is the caller's to close.
type Store struct {
	client redis.UniversalClient
	opts   Options
	live   atomic.Pointer[live]
	// ready is whether every group of the live definitions was built, as
	// last seen.
	ready atomic.Bool
	// stripes serialise this node's writes to one entity, so optimistic
	// retries race the other nodes only, not this node's own goroutines.
	// Each is a one-slot semaphore, so a writer waiting behind a slow
	// Redis gives up with its context. A decision takes one stripe per
	// entity group (six with the sample features) for two round trips:
	// with 64 stripes concurrent decisions of unrelated entities queued
	// behind each other (a fifth of the feature updates timed out at
	// 1,000/s in .ci/perf-cluster); 4,096 make that rare.
	stripes  [4096]chan struct{}
	builtKey string
	// stash keeps each decision's read from Features to its Record.
	stash *lru.Cache[string, *read]
}

var _ engine.FeatureSource = (*Store)(nil)

// New checks opts and the definitions and returns a Store over client. It
// does no I/O: call Empty (or Ready after a first read) to learn whether
// Redis holds a built state, and Rebuild when it does not.
func New(client redis.UniversalClient, opts Options) (*Store, error) {
	if opts.Prefix == "" || strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("redis feature state: prefix %q must be non-empty, without braces", opts.Prefix)
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Margin <= 0 {
		opts.Margin = DefaultMargin
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Store{client: client, opts: opts, builtKey: "{" + opts.Prefix + "}:built", stash: newStash()}
	for i := range s.stripes {
		s.stripes[i] = make(chan struct{}, 1)
	}
	if err := s.SetDefinitions(opts.Definitions); err != nil {
		return nil, err
	}
	return s, nil
}

// SetDefinitions checks defs and makes them live at once for Features and
// Record. Groups whose definitions changed read not ready until a Rebuild
// (on any node) builds them; the caller starts one.
func (s *Store) SetDefinitions(defs []features.Definition) error {
	c, err := features.NewCalculator(defs, features.CalculatorOptions{CompileFilter: s.opts.CompileFilter, LimitsEntity: s.opts.LimitsEntity})
	if err != nil {
		return err
	}
	l := &live{c: c}
	for _, g := range c.Groups() {
		l.ids = append(l.ids, g.ID)
		l.keep = append(l.keep, g.Keep)
	}
	s.live.Store(l)
	// The next read learns whether the new groups are built.
	s.ready.Store(false)
	return nil
}

// Definitions returns the live definitions.
func (s *Store) Definitions() []features.Definition { return s.live.Load().c.Definitions() }

// Calculator returns the live calculator.
func (s *Store) Calculator() *features.Calculator { return s.live.Load().c }

// live is a calculator with what every call needs of its groups.
type live struct {
	c *features.Calculator
	// ids and keep are each group's ID and Keep, by group index.
	ids  []string
	keep []time.Duration
}

// Ready reports whether, at the last read of the built marks (by Features,
// Empty or Rebuild), every group of the live definitions was built. False
// until the first such read.
func (s *Store) Ready() bool { return s.ready.Load() }

// stateKey names an entity's state (see the package doc).
func (s *Store) stateKey(k features.StateKey) string {
	return "{" + s.opts.Prefix + ":" + escapeTag(k.Key) + "}:s"
}

// tagEscaper writes braces in entity values so that they cannot end a
// hash tag early: then every key names its entity unambiguously (no
// entity value can spell another entity's key) and entities spread over
// the cluster's slots by their whole value.
var tagEscaper = strings.NewReplacer(`\`, `\\`, "{", `\(`, "}", `\)`)

func escapeTag(s string) string {
	if !strings.ContainsAny(s, `{}\`) {
		return s
	}
	return tagEscaper.Replace(s)
}

// stripe returns the index of the lock serialising writes to key.
func (s *Store) stripe(key string) int {
	return int(xxhash.Sum64String(key) % uint64(len(s.stripes)))
}

// failed wraps err, a failed Redis call made under a context derived from
// parent: as parent's own end when parent ended (the request's deadline),
// else as engine.ErrUnavailable, so a slow or unreachable Redis degrades
// the decision as any feature source that cannot answer.
func failed(parent context.Context, what string, err error) error {
	if perr := parent.Err(); perr != nil {
		return fmt.Errorf("%s: %w", what, perr)
	}
	// Not %w: our own timeout must not read as the request's deadline.
	return fmt.Errorf("%s: %w: %v", what, engine.ErrUnavailable, err)
}

// Prefix returns the key prefix, as configured.
func (s *Store) Prefix() string { return s.opts.Prefix }
