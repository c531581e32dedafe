package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/cluster"
	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/features/limits"
	"github.com/riskengine/risk/features/postgres"
	"github.com/riskengine/risk/features/redisstate"
)

// clusterUsage is the help of `risk cluster`.
const clusterUsage = `Usage: risk cluster SUBCOMMAND [flags]

  rebuild-features  rebuild the Redis feature state from the decision log in PostgreSQL
  import            copy a stopped single node (--data DIR or --backup FILE) into the cluster
  verify            compare a stopped single node with the cluster; exit 1 when they differ

Run risk cluster SUBCOMMAND --help for its flags; docs/cluster-import.md describes the move.
`

// clusterCommand is `risk cluster SUBCOMMAND`.
func clusterCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, clusterUsage)
		if len(args) == 0 {
			return errors.New("cluster: want a subcommand")
		}
		return flag.ErrHelp
	}
	switch args[0] {
	case "rebuild-features":
		return clusterRebuildCommand(ctx, args[1:], stdout, stderr)
	case "import":
		return clusterImportCommand(ctx, args[1:], stdout, stderr)
	case "verify":
		return clusterVerifyCommand(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, clusterUsage)
	return fmt.Errorf("cluster: unknown subcommand %q", args[0])
}

// clusterTarget is a cluster's shared stores opened by a tool rather than
// a node: no leader, no change feed, no background maintenance.
type clusterTarget struct {
	pg        *postgres.DB
	kv        kv.DB
	decisions *postgres.Decisions
	// rc and state are nil when the tool was given no Redis.
	rc    redis.UniversalClient
	state *redisstate.Store
	store *cluster.Store
}

// openTarget opens the cluster of c. Redis is opened only when c names
// one; withRedis makes it required.
func openTarget(ctx context.Context, c clusterConfig, limitsEntity string, withRedis bool) (*clusterTarget, error) {
	if c.Postgres == "" {
		return nil, errors.New("--postgres is required")
	}
	hasRedis := c.Redis != "" || c.RedisCluster != ""
	if withRedis && !hasRedis {
		return nil, errors.New("--redis or --redis-cluster is required")
	}
	if hasRedis {
		if err := c.validate(); err != nil {
			return nil, err
		}
	}
	pgURL, schema, err := splitSchema(c.Postgres)
	if err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pg, err := postgres.Open(octx, postgres.Options{URL: pgURL, Schema: schema})
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	t := &clusterTarget{pg: pg, kv: pg.KV()}
	t.decisions = postgres.NewDecisions(pg, postgres.DecisionOptions{MaintainEvery: -1})
	if !hasRedis {
		return t, nil
	}
	if t.rc, err = redisClient(c); err != nil {
		t.close()
		return nil, err
	}
	t.state, err = redisstate.New(t.rc, redisstate.Options{
		Prefix: c.RedisPrefix, CompileFilter: compileFilter, LimitsEntity: limitsEntity,
		// A tool may wait longer on Redis than a decision does.
		ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
	})
	if err != nil {
		t.close()
		return nil, err
	}
	t.store = cluster.New(t.decisions, featureState{t.state}, t.kv, nil)
	return t, nil
}

// loadDefinitions makes the feature definitions stored in the cluster live
// in t.state, and reports whether there were any.
func (t *clusterTarget) loadDefinitions(ctx context.Context) (bool, error) {
	v, err := kv.Get(ctx, t.kv, []byte(keyspace.Definitions))
	if errors.Is(err, kv.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read feature definitions: %w", err)
	}
	var defs []features.Definition
	if err := json.Unmarshal(v, &defs); err != nil {
		return false, fmt.Errorf("read feature definitions: %w", err)
	}
	if err := t.state.SetDefinitions(defs); err != nil {
		return false, fmt.Errorf("feature definitions: %w", err)
	}
	return true, nil
}

func (t *clusterTarget) close() {
	if t.store != nil {
		t.store.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = t.decisions.Close(ctx)
	if t.rc != nil {
		_ = t.rc.Close()
	}
	t.pg.Close()
}

// rebuildWorkers is how many decisions the repair pass of rebuildFeatures
// counts at once; each costs two Redis round trips.
const rebuildWorkers = 16

// rebuildFeatures brings the Redis feature state up to the decision log.
// Groups Redis has not built are built by redisstate.Rebuild. When some
// group was built already (the cluster ran, or an earlier import), a
// second pass then counts every decision within the longest window of now
// into it: Record counts a transaction once, so what is counted already is
// left as it is and what a node failed to count, or what an import added
// after the build, is counted now.
func (t *clusterTarget) rebuildFeatures(ctx context.Context, stderr io.Writer) error {
	if _, err := t.loadDefinitions(ctx); err != nil {
		return err
	}
	pending, err := t.state.Pending(ctx)
	if err != nil {
		return fmt.Errorf("read the feature state: %w", err)
	}
	groups := t.state.Calculator().Groups()
	total, err := t.decisions.Count(ctx)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		p := newProgress(stderr, "rebuild features", total)
		err := t.state.Rebuild(ctx, t.decisions, func(done int) { p.set(int64(done)) })
		p.finish()
		if err != nil {
			return err
		}
	}
	if len(pending) == len(groups) {
		return nil
	}
	return t.recordRecent(ctx, stderr, total)
}

// recordRecent counts every decision within the longest feature window of
// now into the feature state, once per transaction.
func (t *clusterTarget) recordRecent(ctx context.Context, stderr io.Writer, total int64) error {
	since := time.Now().Add(-t.state.Calculator().Longest())
	p := newProgress(stderr, "count recent decisions", total)
	defer p.finish()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	recs := make(chan *engine.Record, rebuildWorkers)
	var (
		wg   sync.WaitGroup
		once sync.Once
		ferr error
	)
	for range rebuildWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rec := range recs {
				if err := t.state.Record(ctx, rec); err != nil {
					once.Do(func() { ferr = err; cancel() })
				}
			}
		}()
	}
	var done int64
	err := t.decisions.ScanRecords(ctx, 1, func(rec *engine.Record) error {
		done++
		p.set(done)
		if rec.TransactionID == "" || rec.Payment.OccurredAt.Before(since) {
			return nil
		}
		select {
		case recs <- rec:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(recs)
	wg.Wait()
	if ferr != nil {
		return fmt.Errorf("count decisions into the feature state: %w", ferr)
	}
	return err
}

// clusterRebuildCommand is `risk cluster rebuild-features`.
func clusterRebuildCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("risk cluster rebuild-features", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cc clusterConfig
	clusterFlags(fs, &cc)
	limitsEntity := fs.String("limits-entity", env("RISK_LIMITS_ENTITY", limits.EntityAccount), "what the nodes keep dynamic limits per, as the nodes' --limits-entity [RISK_LIMITS_ENTITY]")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: risk cluster rebuild-features --postgres URL (--redis URL | --redis-cluster ADDRS) [--redis-prefix P]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cc.validate(); err != nil {
		return err
	}
	t, err := openTarget(ctx, cc, *limitsEntity, true)
	if err != nil {
		return err
	}
	defer t.close()
	start := time.Now()
	if err := t.rebuildFeatures(ctx, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "feature state rebuilt in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// progress prints how far a long step is on stderr, at most once a second
// and once at the end: records done, the rate and, with a known total,
// the time left. set is safe for concurrent use.
type progress struct {
	w     io.Writer
	what  string
	total int64
	start time.Time
	done  atomic.Int64
	mu    sync.Mutex
	last  time.Time
}

func newProgress(w io.Writer, what string, total int64) *progress {
	now := time.Now()
	return &progress{w: w, what: what, total: total, start: now, last: now}
}

func (p *progress) set(done int64) {
	p.done.Store(done)
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < time.Second {
		return
	}
	p.last = time.Now()
	p.print()
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.print()
}

// print writes one line; p.mu is held.
func (p *progress) print() {
	done := p.done.Load()
	secs := time.Since(p.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(done) / secs
	}
	line := fmt.Sprintf("%s: %d records", p.what, done)
	if p.total > 0 {
		line = fmt.Sprintf("%s: %d/%d records", p.what, done, p.total)
	}
	line += fmt.Sprintf(", %.0f/s", rate)
	if p.total > done && rate > 0 {
		left := time.Duration(float64(p.total-done) / rate * float64(time.Second))
		line += fmt.Sprintf(", %v left", left.Round(time.Second))
	}
	fmt.Fprintln(p.w, line)
}

// discardLog is the logger of stores a tool opens: their errors come back
// as errors.
var discardLog = slog.New(slog.DiscardHandler)
