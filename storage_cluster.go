package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/riskengine/risk/features/cluster"
	"github.com/riskengine/risk/features/limits"
	"github.com/riskengine/risk/features/postgres"
	"github.com/riskengine/risk/features/redisstate"
)

// reapEvery is how often expired kv rows are deleted from PostgreSQL.
const reapEvery = 5 * time.Minute

// openCluster connects to the cluster's PostgreSQL (migrating its schema)
// and Redis and returns the storage of a stateless node. PostgreSQL must
// answer at start; Redis may not yet, the node then starts degraded and
// /readyz says so.
func openCluster(ctx context.Context, c config, log *slog.Logger) (*storage, error) {
	pgURL, schema, err := splitSchema(c.Cluster.Postgres)
	if err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pg, err := postgres.Open(octx, postgres.Options{URL: pgURL, Schema: schema})
	if err != nil {
		return nil, fmt.Errorf("cluster mode: PostgreSQL: %w", err)
	}
	rc, err := redisClient(c.Cluster)
	if err != nil {
		pg.Close()
		return nil, err
	}
	decisions := postgres.NewDecisions(pg, postgres.DecisionOptions{Retention: c.Retention, Log: log})
	state, err := redisstate.New(rc, redisstate.Options{
		Prefix: c.Cluster.RedisPrefix, CompileFilter: compileFilter, LimitsEntity: c.LimitsEntity, Log: log,
	})
	if err != nil {
		_ = decisions.Close(ctx)
		_ = rc.Close()
		pg.Close()
		return nil, err
	}
	cs := cluster.New(decisions, featureState{state}, pg.KV(), log)
	if err := cs.LoadDefinitions(octx); err != nil {
		log.Warn("cluster mode: feature state not read at start; features are degraded until Redis answers", "err", err)
	}
	leader := postgres.NewLeader(pg, time.Second, log)
	bg, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	started := false // start and close run on serve's goroutine
	return &storage{
		kv: pg.KV(), decisions: cs, features: cs,
		limits: limits.Sources{
			DB: pg.KV(), Spend: cs, Decisions: cs, Kind: c.LimitsEntity,
			MarkerTTL: c.Retention + 30*24*time.Hour,
		},
		lastSeq: func() uint64 {
			lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			n, err := decisions.SettledSeq(lctx)
			if err != nil {
				log.Error("read the last decision sequence number", "err", err)
			}
			return n
		},
		ready: func(ctx context.Context) error {
			if err := pg.Ping(ctx); err != nil {
				return fmt.Errorf("PostgreSQL unreachable: %w", err)
			}
			if err := rc.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("Redis unreachable: %w", err)
			}
			return nil
		},
		watch:          pg.Watch,
		reloadFeatures: cs.LoadDefinitions,
		leader:         leader.IsLeader,
		start: func(context.Context) error {
			started = true
			go func() {
				defer close(done)
				go leader.Run(bg)
				reapLoop(bg, pg, cs, log)
			}()
			return nil
		},
		close: func(ctx context.Context) error {
			stop()
			if started {
				select {
				case <-done:
				case <-ctx.Done():
				}
			}
			cs.Close()
			err := decisions.Close(ctx)
			err = errors.Join(err, rc.Close())
			pg.Close()
			return err
		},
		collectors: clusterMetrics(decisions, cs, leader),
		mode:       "cluster",
	}, nil
}

// reapLoop deletes expired kv rows and retries a feature rebuild a failed
// start left pending, until ctx ends.
func reapLoop(ctx context.Context, pg *postgres.DB, cs *cluster.Store, log *slog.Logger) {
	reap := time.NewTicker(reapEvery)
	defer reap.Stop()
	check := time.NewTicker(10 * time.Second)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-reap.C:
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			if _, err := pg.ReapExpired(rctx); err != nil && ctx.Err() == nil {
				log.Warn("delete expired rows", "err", err)
			}
			cancel()
		case <-check.C:
			if cs.Ready() {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := cs.LoadDefinitions(rctx); err != nil && ctx.Err() == nil {
				log.Warn("feature state still unavailable", "err", err)
			}
			cancel()
		}
	}
}

// splitSchema takes a search_path parameter out of a PostgreSQL URL: the
// schema the node's tables live in (created when missing).
func splitSchema(raw string) (string, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("--postgres: %w", err)
	}
	q := u.Query()
	schema := q.Get("search_path")
	q.Del("search_path")
	u.RawQuery = q.Encode()
	return u.String(), schema, nil
}

// redisClient returns the client of --redis or --redis-cluster, with the
// decision path's timeouts.
func redisClient(c clusterConfig) (redis.UniversalClient, error) {
	if c.RedisCluster != "" {
		o := redisstate.ClientOptions(c.RedisAddrs()...)
		o.IsClusterMode = true
		return redis.NewUniversalClient(o), nil
	}
	ro, err := redis.ParseURL(c.Redis)
	if err != nil {
		return nil, fmt.Errorf("--redis: %w", err)
	}
	o := redisstate.ClientOptions(ro.Addr)
	o.DB, o.Username, o.Password, o.TLSConfig = ro.DB, ro.Username, ro.Password, ro.TLSConfig
	return redis.NewUniversalClient(o), nil
}

// featureState adapts the Redis feature state to cluster.FeatureState.
type featureState struct{ *redisstate.Store }

func (f featureState) Rebuild(ctx context.Context, h cluster.History, progress func(int)) error {
	return f.Store.Rebuild(ctx, h, progress)
}

// clusterMetrics are a cluster node's figures beyond single-node mode's.
func clusterMetrics(d *postgres.Decisions, cs *cluster.Store, l *postgres.Leader) []prometheus.Collector {
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "risk_cluster_leader",
			Help: "1 while this node runs the cluster's singleton work (review and webhook readers)."},
			func() float64 { return b2f(l.IsLeader()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "risk_cluster_features_ready",
			Help: "1 when the Redis feature state is built for every feature; 0 during a rebuild."},
			func() float64 { return b2f(cs.Ready()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "risk_cluster_feature_record_failures_total",
			Help: "Decisions stored in PostgreSQL whose feature update did not reach Redis at once (retried in the background)."},
			func() float64 { return float64(cs.RecordFailures()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "risk_cluster_feature_repairs_lost_total",
			Help: "Decisions whose feature update could not be repaired in the background (queue full, 10 min of failures, shutdown): risk cluster rebuild-features recounts them."},
			func() float64 { return float64(cs.RepairsLost()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "risk_decision_log_commits_total",
			Help: "Decisions written to the PostgreSQL decision log by this node, duplicates answered included."},
			func() float64 { return float64(d.Stats().Commits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "risk_decision_log_batches_total",
			Help: "PostgreSQL transactions of the group commit: commits/batches is the mean batch."},
			func() float64 { return float64(d.Stats().Batches) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "risk_decision_log_failed_batches_total",
			Help: "Group-commit transactions that failed (each failed every decision in it)."},
			func() float64 { return float64(d.Stats().Failed) }),
	}
}
