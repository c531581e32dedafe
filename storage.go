package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/server"
)

// storage is everything a node keeps its state in, whatever keeps it: one
// Badger directory on a single node (openBadger), PostgreSQL and Redis in
// cluster mode (openCluster). wire builds the service on it and knows no
// more of either.
type storage struct {
	// kv keeps the small stores: keys, rules, lists, limits, audit,
	// review, webhooks.
	kv kv.DB
	// decisions is the decision log.
	decisions decisionLog
	// features computes feature values and holds their definitions.
	features featureStore
	// limits is where the Limiter reads and keeps its state.
	limits features.LimiterSources
	// lastSeq is the newest decision's sequence number: where a new reader
	// of the decision log starts.
	lastSeq func() uint64
	// stats are the Badger store's figures for the metrics; nil in cluster
	// mode, whose figures are in collectors.
	stats func() server.StoreStats
	// backup streams a backup for GET /admin/backup; nil in cluster mode
	// (pg_dump backs a cluster up).
	backup admin.Backuper
	// ready is nil while the stores answer (see /readyz).
	ready func(ctx context.Context) error
	// watch, in cluster mode, calls fn with the key prefixes another node
	// changed (nil: anything may have changed) until ctx ends. Nil on one
	// node.
	watch func(ctx context.Context, fn func(prefixes []string))
	// leader, in cluster mode, reports whether this node runs the
	// cluster's singleton work (review and webhook readers). Nil on one
	// node, which always does.
	leader func() bool
	// reloadFeatures, in cluster mode, re-reads the shared feature
	// definitions. Nil on one node.
	reloadFeatures func(ctx context.Context) error
	// start runs after wiring: background work of the stores.
	start func(ctx context.Context) error
	// close releases everything, bounded by ctx.
	close func(ctx context.Context) error
	// collectors are the store's own metrics, registered by wire.
	collectors []prometheus.Collector
	// mode is "single-node" or "cluster", for logs.
	mode string
}

// decisionLog is what the service needs of the decision log.
type decisionLog interface {
	engine.DecisionStore
	engine.Labeler
	Get(ctx context.Context, decisionID string) (*engine.Record, error)
	Search(ctx context.Context, q engine.Query) ([]*engine.Record, string, error)
	ScanRecords(ctx context.Context, from uint64, fn func(rec *engine.Record) error) error
}

// featureStore is what the service needs of the feature state.
type featureStore interface {
	engine.FeatureSource
	admin.FeatureDefinitions
	HasStoredDefinitions() bool
}

// openBadger opens the single-node store in --data.
func openBadger(ctx context.Context, c config, log *slog.Logger) (*storage, error) {
	store := features.New(features.Options{
		Dir: c.DataDir, SyncWrites: c.SyncWrites, FlushInterval: c.FlushInterval,
		CacheEntries: c.CacheEntries, Retention: c.Retention, CompileFilter: compileFilter, Log: log,
		LimitsEntity: c.LimitsEntity,
	})
	if err := store.Open(ctx); err != nil {
		return nil, err
	}
	st, err := badgerStorage(store)
	if err != nil {
		if cerr := store.Close(ctx); cerr != nil {
			log.Error("close store", "err", cerr)
		}
		return nil, err
	}
	return st, nil
}

// badgerStorage is the storage of an open single-node store.
func badgerStorage(store *features.Store) (*storage, error) {
	limits, err := store.LimiterSources()
	if err != nil {
		return nil, err
	}
	return &storage{
		kv: store.KV(), decisions: store, features: store, limits: limits,
		lastSeq: func() uint64 { return store.Stats().LastSeq },
		stats:   storeStats(store),
		backup:  store,
		ready:   func(context.Context) error { return nil },
		start:   func(context.Context) error { return nil },
		close:   store.Close,
		mode:    "single-node",
	}, nil
}
