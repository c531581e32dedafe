// Package cluster puts the shared stores of cluster mode together into the
// one decision store, feature source and definitions holder a node wires
// its engine on: the decision log in PostgreSQL (the system of record) and
// the feature state in Redis (hot and rebuildable from that log). Small
// state (keys, rules, lists, limits, audit) lives in PostgreSQL's kv.DB and
// is wired directly.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/features/limits"
)

// DecisionLog is the durable decision log (package postgres).
type DecisionLog interface {
	Commit(ctx context.Context, rec *engine.Record) error
	Lookup(ctx context.Context, transactionID string) (*engine.Record, error)
	Get(ctx context.Context, decisionID string) (*engine.Record, error)
	Search(ctx context.Context, q engine.Query) ([]*engine.Record, string, error)
	ScanRecords(ctx context.Context, from uint64, fn func(rec *engine.Record) error) error
	AddLabel(ctx context.Context, decisionID string, l engine.Label) (*engine.Record, bool, error)
}

// FeatureState is the shared feature state (package redisstate).
type FeatureState interface {
	Features(ctx context.Context, p *engine.Payment, dst []engine.FeatureValue) ([]engine.FeatureValue, error)
	// Record counts rec once per transaction id when called again soon
	// after (redisstate bounds what each entity remembers).
	Record(ctx context.Context, rec *engine.Record) error
	Spent(ctx context.Context, p *engine.Payment) (float64, error)
	Ready() bool
	Empty(ctx context.Context) (bool, error)
	SetDefinitions(defs []features.Definition) error
	Definitions() []features.Definition
	Rebuild(ctx context.Context, history History, progress func(done int)) error
}

// History is the decision log a rebuild of the feature state reads.
type History interface {
	ScanRecords(ctx context.Context, from uint64, fn func(rec *engine.Record) error) error
}

// Store is a node's view of the cluster's stores. It implements
// engine.DecisionStore, engine.FeatureSource, engine.Labeler and
// limits.SpendSource, and holds the feature definitions every node
// shares. It is safe for concurrent use.
type Store struct {
	log   DecisionLog
	state FeatureState
	db    kv.DB
	lg    *slog.Logger

	defsMu   sync.Mutex // serialises definition changes on this node
	rebuild  atomic.Pointer[features.BackfillStatus]
	rebuilds sync.WaitGroup
	ctx      context.Context
	cancel   context.CancelFunc

	// recordFailures counts decisions stored in PostgreSQL whose feature
	// update did not reach Redis at once; repairs holds them for the
	// repairer, which retries them in the background. repairLost counts
	// those the repairer could not take (its queue full) or gave up on:
	// only a rebuild recounts them.
	recordFailures atomic.Int64
	repairLost     atomic.Int64
	repairs        chan *engine.Record
	repairing      sync.WaitGroup
}

// Repairs of feature updates that failed.
const (
	// repairQueue bounds the decisions waiting for a retried update.
	repairQueue = 10_000
	// repairFor is how long the repairer keeps retrying one decision.
	repairFor = 10 * time.Minute
)

var (
	_ engine.DecisionStore  = (*Store)(nil)
	_ engine.FeatureSource  = (*Store)(nil)
	_ engine.Labeler        = (*Store)(nil)
	_ limits.SpendSource    = (*Store)(nil)
	_ limits.DecisionSearch = (*Store)(nil)
)

// New returns the Store over a decision log, a feature state and the kv.DB
// the definitions are kept in. Call Load before the first decision and
// Close at shutdown.
func New(log DecisionLog, state FeatureState, db kv.DB, lg *slog.Logger) *Store {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{log: log, state: state, db: db, lg: lg, ctx: ctx, cancel: cancel, repairs: make(chan *engine.Record, repairQueue)}
	s.repairing.Add(1)
	go s.repair()
	return s
}

// Commit stores rec in the decision log and then counts it into the feature
// state. A decision is acknowledged once the log committed it: when the
// feature update fails (Redis down), the error is logged and counted, the
// decision stands, and a retry of the transaction or a rebuild repairs the
// count. A retry of a transaction already stored (on any node) counts the
// stored decision again, which the feature state ignores when it was
// counted: that is how a node killed between the two writes is repaired.
func (s *Store) Commit(ctx context.Context, rec *engine.Record) error {
	err := s.log.Commit(ctx, rec)
	var dup *engine.DuplicateError
	switch {
	case errors.As(err, &dup):
		s.record(ctx, dup.Stored)
		return err
	case err != nil:
		return err
	}
	s.record(ctx, rec)
	return nil
}

func (s *Store) record(ctx context.Context, rec *engine.Record) {
	err := s.state.Record(ctx, rec)
	if err == nil {
		return
	}
	s.recordFailures.Add(1)
	select {
	case s.repairs <- rec:
		s.lg.Warn("count decision into the feature state: failed, retrying in the background",
			"decision_id", rec.ID, "transaction_id", rec.TransactionID, "err", err)
	default:
		s.repairLost.Add(1)
		s.lg.Error("count decision into the feature state: failed and the repair queue is full; `risk cluster rebuild-features` recounts it",
			"decision_id", rec.ID, "transaction_id", rec.TransactionID, "err", err)
	}
}

// repair retries the feature updates that failed, oldest first, with a
// growing pause, until each succeeds or repairFor has passed. The state
// counts a transaction once, so a retry that raced a successful one, or a
// gateway's retry, changes nothing.
func (s *Store) repair() {
	defer s.repairing.Done()
	for {
		var rec *engine.Record
		select {
		case <-s.ctx.Done():
			return
		case rec = <-s.repairs:
		}
		deadline := time.Now().Add(repairFor)
		for pause := 50 * time.Millisecond; ; pause = min(2*pause, 5*time.Second) {
			ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
			err := s.state.Record(ctx, rec)
			cancel()
			if err == nil {
				break
			}
			if s.ctx.Err() != nil {
				return
			}
			if time.Now().After(deadline) {
				s.repairLost.Add(1)
				s.lg.Error("count decision into the feature state: gave up; `risk cluster rebuild-features` recounts it",
					"decision_id", rec.ID, "transaction_id", rec.TransactionID, "err", err)
				break
			}
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(pause):
			}
		}
	}
}

// RepairsLost is how many stored decisions this node could not count into
// the feature state even in the background: a rebuild recounts them.
func (s *Store) RepairsLost() int64 { return s.repairLost.Load() }

// RecordFailures is how many stored decisions were not counted into the
// feature state by this node.
func (s *Store) RecordFailures() int64 { return s.recordFailures.Load() }

// Lookup implements engine.DecisionStore.
func (s *Store) Lookup(ctx context.Context, transactionID string) (*engine.Record, error) {
	return s.log.Lookup(ctx, transactionID)
}

// Get returns a decision by id.
func (s *Store) Get(ctx context.Context, decisionID string) (*engine.Record, error) {
	return s.log.Get(ctx, decisionID)
}

// Search finds decisions, newest first.
func (s *Store) Search(ctx context.Context, q engine.Query) ([]*engine.Record, string, error) {
	return s.log.Search(ctx, q)
}

// ScanRecords reads the decision log in commit order from seq from.
func (s *Store) ScanRecords(ctx context.Context, from uint64, fn func(rec *engine.Record) error) error {
	return s.log.ScanRecords(ctx, from, fn)
}

// AddLabel implements engine.Labeler. A new label is counted into the
// feature state too: features whose filter reads labels see it, once.
func (s *Store) AddLabel(ctx context.Context, decisionID string, l engine.Label) (*engine.Record, bool, error) {
	rec, added, err := s.log.AddLabel(ctx, decisionID, l)
	if err == nil && added {
		s.record(ctx, rec)
	}
	return rec, added, err
}

// Features implements engine.FeatureSource.
func (s *Store) Features(ctx context.Context, p *engine.Payment, dst []engine.FeatureValue) ([]engine.FeatureValue, error) {
	return s.state.Features(ctx, p, dst)
}

// DailySpent implements limits.SpendSource.
func (s *Store) DailySpent(ctx context.Context, p *engine.Payment) (float64, bool, error) {
	v, err := s.state.Spent(ctx, p)
	return v, s.state.Ready(), err
}

// Definitions returns the live feature definitions.
func (s *Store) Definitions() []features.Definition { return s.state.Definitions() }

// HasStoredDefinitions reports whether definitions were ever stored in the
// cluster.
func (s *Store) HasStoredDefinitions() bool {
	_, err := kv.Get(context.Background(), s.db, []byte(keyspace.Definitions))
	return err == nil
}

// SetDefinitions validates defs, stores them for every node and makes them
// live here; other nodes take them when told of the change (LoadDefinitions).
// Features new or changed read not ready until the rebuild this starts in
// the background has counted their history.
func (s *Store) SetDefinitions(ctx context.Context, defs []features.Definition) error {
	if defs == nil {
		defs = []features.Definition{}
	}
	data, err := json.Marshal(defs)
	if err != nil {
		return fmt.Errorf("encode feature definitions: %w", err)
	}
	s.defsMu.Lock()
	defer s.defsMu.Unlock()
	prev := s.state.Definitions()
	// The feature state validates (and compiles the filters) first, so
	// nothing invalid is stored for the other nodes.
	if err := s.state.SetDefinitions(defs); err != nil {
		return err
	}
	if err := kv.Set(ctx, s.db, []byte(keyspace.Definitions), data); err != nil {
		if rerr := s.state.SetDefinitions(prev); rerr != nil {
			s.lg.Error("restore the feature definitions", "err", rerr)
		}
		return fmt.Errorf("store feature definitions: %w", err)
	}
	s.startRebuild()
	return nil
}

// LoadDefinitions reads the definitions stored in the cluster and makes
// them live when they differ from the live ones; then, when the feature
// state lacks some group, it starts a rebuild. Nodes call it at start and
// whenever the definitions changed.
func (s *Store) LoadDefinitions(ctx context.Context) error {
	v, err := kv.Get(ctx, s.db, []byte(keyspace.Definitions))
	if errors.Is(err, kv.ErrNotFound) {
		return s.rebuildIfEmpty(ctx)
	}
	if err != nil {
		return fmt.Errorf("load feature definitions: %w", err)
	}
	var defs []features.Definition
	if err := json.Unmarshal(v, &defs); err != nil {
		return fmt.Errorf("load feature definitions: %w: %w", err, engine.ErrCorrupt)
	}
	s.defsMu.Lock()
	if !reflect.DeepEqual(normal(defs), normal(s.state.Definitions())) {
		if err := s.state.SetDefinitions(defs); err != nil {
			s.defsMu.Unlock()
			return fmt.Errorf("load feature definitions: %w", err)
		}
	}
	s.defsMu.Unlock()
	return s.rebuildIfEmpty(ctx)
}

func normal(defs []features.Definition) []features.Definition {
	if len(defs) == 0 {
		return nil
	}
	return defs
}

// rebuildIfEmpty starts a rebuild when Redis lacks a built state for some
// live group: a new or flushed Redis, or new definitions.
func (s *Store) rebuildIfEmpty(ctx context.Context) error {
	empty, err := s.state.Empty(ctx)
	if err != nil {
		return fmt.Errorf("read the feature state: %w", err)
	}
	if empty {
		s.startRebuild()
	}
	return nil
}

// startRebuild rebuilds the feature state from the decision log in the
// background, unless one is running on this node.
func (s *Store) startRebuild() {
	st := &features.BackfillStatus{Feature: "*"}
	if cur := s.rebuild.Load(); cur != nil && !cur.Done {
		return
	}
	s.rebuild.Store(st)
	s.rebuilds.Add(1)
	go func() {
		defer s.rebuilds.Done()
		progress := func(n int) {
			next := *s.rebuild.Load()
			next.Processed = uint64(n)
			s.rebuild.Store(&next)
		}
		// Definitions that changed while a pass ran are built by the
		// next pass.
		var err error
		for range 3 {
			if err = s.Rebuild(s.ctx, progress); err != nil {
				break
			}
			empty, eerr := s.state.Empty(s.ctx)
			if err = eerr; err != nil || !empty {
				break
			}
		}
		next := *s.rebuild.Load()
		next.Done = true
		if err != nil {
			next.Error = err.Error()
			s.lg.Error("rebuild the feature state", "err", err)
		}
		s.rebuild.Store(&next)
	}()
}

// Rebuild counts the decision log into every feature group Redis lacks;
// progress is told how many decisions were read.
func (s *Store) Rebuild(ctx context.Context, progress func(done int)) error {
	return s.state.Rebuild(ctx, s.log, progress)
}

// Status reports the rebuild of the feature state, for every feature.
func (s *Store) Status(feature string) (features.BackfillStatus, bool) {
	st := s.rebuild.Load()
	if st == nil {
		return features.BackfillStatus{}, false
	}
	out := *st
	out.Feature = feature
	return out, true
}

// Ready reports whether the feature state is built.
func (s *Store) Ready() bool { return s.state.Ready() }

// Close stops a running rebuild and the repairer and waits for them.
// Repairs still queued are dropped: a rebuild recounts them.
func (s *Store) Close() {
	s.cancel()
	s.rebuilds.Wait()
	s.repairing.Wait()
	if n := len(s.repairs); n > 0 {
		s.repairLost.Add(int64(n))
		s.lg.Warn("stopped with feature updates still to repair; `risk cluster rebuild-features` recounts them", "decisions", n)
	}
}
