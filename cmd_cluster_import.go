package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/features/limits"
)

// What an import does with each registered key prefix of a single node.
const (
	// kvCopy: copied byte for byte, with its remaining TTL.
	kvCopy = iota
	// kvCursor: a decision-log sequence number of the single node, which
	// means nothing in the cluster's log: set to where the cluster's log
	// continues after the import instead.
	kvCursor
	// kvSkip: the decision log and feature windows of the single node;
	// the decisions are imported as records and the feature state is
	// rebuilt from them in Redis.
	kvSkip
)

// importPlan says what an import does with every keyspace entry. A new
// entry fails TestImportPlanCoversKeyspace until it is placed here.
var importPlan = map[string]int{
	keyspace.Decision: kvSkip, keyspace.Tx: kvSkip, keyspace.Seq: kvSkip, keyspace.SeqGroup: kvSkip,
	keyspace.Table: kvSkip, keyspace.Account: kvSkip, keyspace.Card: kvSkip, keyspace.Outcome: kvSkip,
	keyspace.Time: kvSkip, keyspace.Watermark: kvSkip,
	keyspace.Window: kvSkip, keyspace.Entity: kvSkip, keyspace.FeatureName: kvSkip, keyspace.Epoch: kvSkip,
	keyspace.Backfill: kvSkip, keyspace.Hidden: kvSkip,
	keyspace.ImportSources: kvSkip, // the cluster's own
	// Console sessions: the node's browsers sign in again on the cluster.
	keyspace.ConsoleSession: kvSkip,

	keyspace.Definitions: kvCopy,
	keyspace.ListMeta:    kvCopy, keyspace.ListItem: kvCopy,
	keyspace.LimitsPolicy: kvCopy, keyspace.LimitOverride: kvCopy, keyspace.Trust: kvCopy, keyspace.LabelApplied: kvCopy,
	keyspace.RuleSetVersion: kvCopy, keyspace.DraftRule: kvCopy, keyspace.DraftMeta: kvCopy,
	keyspace.APIKey: kvCopy, keyspace.Audit: kvCopy,
	keyspace.ReviewItem: kvCopy, keyspace.ReviewActive: kvCopy, keyspace.ReviewClosed: kvCopy,
	keyspace.ReviewPolicy: kvCopy, keyspace.Case: kvCopy,
	keyspace.WebhookHook: kvCopy, keyspace.WebhookEvent: kvCopy, keyspace.WebhookDue: kvCopy, keyspace.WebhookLog: kvCopy,
	// Audit entry numbers are copied unchanged, so the last one the
	// webhook reader read stays right.
	keyspace.WebhookAuditCursor: kvCopy,
	keyspace.AlertRule:          kvCopy, keyspace.Alert: kvCopy, keyspace.AlertSeeded: kvCopy,
	keyspace.Canary: kvCopy,
	// Finished backtests stay readable; one the node was running reads as
	// failed (its node stopped writing it).
	keyspace.Backtest: kvCopy,

	keyspace.ReviewCursor:  kvCursor,
	keyspace.WebhookCursor: kvCursor,
}

// prefixesWith returns the keyspace entries the plan gives action, in
// registry order.
func prefixesWith(action int) []string {
	var out []string
	for _, e := range keyspace.All() {
		if a, ok := importPlan[e.Key]; ok && a == action {
			out = append(out, e.Key)
		}
	}
	return out
}

// Sizes of the import's transactions.
const (
	importKVBatch       = 500
	importDecisionBatch = 256
)

// importSource is a stopped single node's store opened for reading.
type importSource struct {
	store *features.Store
	// id names the store: its first decision and the instant it was
	// made. Decision ids derive from transaction ids, so the id alone
	// could repeat in another store; with the time it does not.
	id string
	// decisions is the newest sequence number: about how many decisions
	// there are, for the progress line.
	decisions int64
	cleanup   func()
}

// openSource opens the single node's data directory, or restores backup
// into a temporary one first.
func openSource(ctx context.Context, dataDir, backup, limitsEntity string, stderr io.Writer) (*importSource, error) {
	cleanup := func() {}
	if backup != "" {
		tmp, err := os.MkdirTemp("", "risk-import-")
		if err != nil {
			return nil, err
		}
		cleanup = func() { _ = os.RemoveAll(tmp) }
		f, err := os.Open(backup)
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("--backup: %w", err)
		}
		dataDir = filepath.Join(tmp, "data")
		fmt.Fprintf(stderr, "restoring %s into %s\n", backup, dataDir)
		_, err = features.Restore(ctx, dataDir, f)
		f.Close()
		if err != nil {
			cleanup()
			return nil, err
		}
	}
	if _, err := os.Stat(dataDir); err != nil {
		cleanup()
		return nil, fmt.Errorf("--data: %w", err)
	}
	store := features.New(features.Options{Dir: dataDir, CompileFilter: compileFilter, LimitsEntity: limitsEntity, Log: discardLog})
	if err := store.Open(ctx); err != nil {
		cleanup()
		return nil, fmt.Errorf("open %s (is its node stopped?): %w", dataDir, err)
	}
	src := &importSource{store: store, id: "empty", decisions: int64(store.Stats().LastSeq)}
	src.cleanup = func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = store.Close(cctx)
		cleanup()
	}
	err := store.ScanRecords(ctx, 1, func(rec *engine.Record) error {
		src.id = "first decision " + rec.ID + " at " + rec.EvaluatedAt.UTC().Format(time.RFC3339Nano)
		return kv.Stop
	})
	if err != nil && !errors.Is(err, kv.Stop) {
		src.cleanup()
		return nil, err
	}
	return src, nil
}

// importSources is the value under keyspace.ImportSources: the single
// nodes imported into this cluster.
type importSources struct {
	V    int           `json:"v"`
	List []sourceEntry `json:"sources"`
}

type sourceEntry struct {
	ID       string    `json:"id"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
}

func (s *importSources) find(id string) *sourceEntry {
	for i := range s.List {
		if s.List[i].ID == id {
			return &s.List[i]
		}
	}
	return nil
}

// updateSources changes the stored import sources with fn.
func updateSources(ctx context.Context, db kv.DB, fn func(*importSources) error) error {
	return db.Update(ctx, func(tx kv.Tx) error {
		s := importSources{V: 1}
		v, err := tx.Get([]byte(keyspace.ImportSources))
		switch {
		case err == nil:
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("read import sources: %w", err)
			}
		case !errors.Is(err, kv.ErrNotFound):
			return err
		}
		if err := fn(&s); err != nil {
			return err
		}
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		return tx.Set([]byte(keyspace.ImportSources), b)
	})
}

// importSummary is what an import did, printed and kept in its audit entry.
type importSummary struct {
	Source       string         `json:"source"`
	Keys         map[string]int `json:"keys,omitempty"`
	Imported     int            `json:"decisions_imported"`
	Present      int            `json:"decisions_present"`
	Labels       int            `json:"labels_added"`
	Conflicts    int            `json:"conflicts"`
	NextSeq      uint64         `json:"cursors_set_to,omitempty"`
	DecisionOnly bool           `json:"decisions_only,omitempty"`
}

// clusterImportCommand is `risk cluster import`.
func clusterImportCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("risk cluster import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cc clusterConfig
	clusterFlags(fs, &cc)
	dataDir := fs.String("data", "", "the stopped single node's data directory")
	backup := fs.String("backup", "", "a file written by risk backup, to import instead of --data")
	merge := fs.Bool("merge", false, "import into a PostgreSQL that already holds decisions from elsewhere")
	decisionsOnly := fs.Bool("decisions-only", false, "import only decisions and their labels, not keys, rules, lists, audit... (the second run of a move, docs/cluster-import.md)")
	limit := fs.Int("limit", 0, "stop after importing this many new decisions (0: all); a later run continues")
	limitsEntity := fs.String("limits-entity", env("RISK_LIMITS_ENTITY", limits.EntityAccount), "what the nodes keep dynamic limits per, as the nodes' --limits-entity [RISK_LIMITS_ENTITY]")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: risk cluster import (--data DIR | --backup FILE) --postgres URL (--redis URL | --redis-cluster ADDRS) [--redis-prefix P] [--merge] [--decisions-only]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*dataDir == "") == (*backup == "") {
		fs.Usage()
		return errors.New("cluster import: give one of --data and --backup")
	}
	if err := cc.validate(); err != nil {
		return err
	}
	if !cc.Enabled() {
		return errors.New("cluster import: --postgres and --redis (or --redis-cluster) are required")
	}
	src, err := openSource(ctx, *dataDir, *backup, *limitsEntity, stderr)
	if err != nil {
		return err
	}
	defer src.cleanup()
	t, err := openTarget(ctx, cc, *limitsEntity, true)
	if err != nil {
		return err
	}
	defer t.close()

	sum := importSummary{Source: src.id, DecisionOnly: *decisionsOnly}
	if err := claimSource(ctx, t, src.id, *merge); err != nil {
		return err
	}
	if !*decisionsOnly {
		if sum.Keys, err = copyKV(ctx, src.store, t.kv, stderr); err != nil {
			return err
		}
	}
	stopped, err := importDecisions(ctx, src, t, *limit, &sum, stderr)
	if err != nil {
		return err
	}
	if stopped {
		fmt.Fprintf(stdout, "stopped after %d new decisions (--limit); run again to continue\n", sum.Imported)
		return nil
	}
	if !*decisionsOnly {
		if sum.NextSeq, err = setCursors(ctx, t); err != nil {
			return err
		}
	}
	if _, err := admin.NewAudit(t.kv, nil).Record(ctx, admin.Entry{
		Actor: "risk cluster import", Action: "cluster.import", Target: "cluster", After: sum,
	}); err != nil {
		return err
	}
	if err := t.rebuildFeatures(ctx, stderr); err != nil {
		return err
	}
	err = updateSources(ctx, t.kv, func(s *importSources) error {
		if e := s.find(src.id); e != nil {
			e.Finished = time.Now().UTC()
		}
		return nil
	})
	if err != nil {
		return err
	}
	out, _ := json.MarshalIndent(sum, "", "  ")
	fmt.Fprintf(stdout, "%s\n", out)
	if sum.Conflicts > 0 {
		return fmt.Errorf("cluster import: %d transactions are stored in the cluster with another decision; they were left as they are", sum.Conflicts)
	}
	return nil
}

// claimSource records src as imported into the cluster, or refuses a
// cluster holding decisions from elsewhere unless merge.
func claimSource(ctx context.Context, t *clusterTarget, id string, merge bool) error {
	n, err := t.decisions.Count(ctx)
	if err != nil {
		return err
	}
	return updateSources(ctx, t.kv, func(s *importSources) error {
		if s.find(id) != nil {
			return nil // a run again: resume
		}
		if n > 0 && !merge {
			before := "none"
			if len(s.List) > 0 {
				ids := make([]string, len(s.List))
				for i, e := range s.List {
					ids[i] = e.ID
				}
				before = strings.Join(ids, ", ")
			}
			return fmt.Errorf("cluster import: PostgreSQL holds %d decisions and none of them came from this store (%s; imported before: %s); give --merge to add this store's decisions to them",
				n, id, before)
		}
		s.List = append(s.List, sourceEntry{ID: id, Started: time.Now().UTC()})
		return nil
	})
}

// copyKV copies every key of the prefixes the plan copies, with its
// remaining TTL, and returns how many keys of each prefix it copied.
// Expired keys are skipped.
func copyKV(ctx context.Context, src *features.Store, dst kv.DB, stderr io.Writer) (map[string]int, error) {
	type entry struct {
		key, value []byte
		ttl        time.Duration
	}
	counts := map[string]int{}
	var batch []entry
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := dst.Update(ctx, func(tx kv.Tx) error {
			for _, e := range batch {
				var err error
				if e.ttl > 0 {
					err = tx.SetTTL(e.key, e.value, e.ttl)
				} else {
					err = tx.Set(e.key, e.value)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		batch = batch[:0]
		return err
	}
	p := newProgress(stderr, "copy keys", 0)
	var done int64
	for _, prefix := range prefixesWith(kvCopy) {
		err := src.ScanKV(ctx, []byte(prefix), func(key, value []byte, expires time.Time) error {
			var ttl time.Duration
			if !expires.IsZero() {
				if ttl = time.Until(expires); ttl <= 0 {
					return nil
				}
			}
			batch = append(batch, entry{slices.Clone(key), value, ttl})
			counts[prefix]++
			done++
			p.set(done)
			if len(batch) == importKVBatch {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return nil, fmt.Errorf("copy %s keys: %w", prefix, err)
		}
	}
	p.finish()
	return counts, nil
}

// importDecisions imports the source's decisions in commit order, in
// batches. It reports whether it stopped at limit.
func importDecisions(ctx context.Context, src *importSource, t *clusterTarget, limit int, sum *importSummary, stderr io.Writer) (bool, error) {
	p := newProgress(stderr, "import decisions", src.decisions)
	defer p.finish()
	var (
		batch []*engine.Record
		done  int64
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		c, err := t.decisions.Import(ctx, batch)
		sum.Imported += c.Imported
		sum.Present += c.Present
		sum.Labels += c.Labels
		sum.Conflicts += len(c.Conflicts)
		for _, tx := range c.Conflicts {
			fmt.Fprintf(stderr, "conflict: transaction %q is stored in the cluster with another decision\n", tx)
		}
		batch = batch[:0]
		if err != nil {
			return err
		}
		if limit > 0 && sum.Imported >= limit {
			return errLimit
		}
		return nil
	}
	err := src.store.ScanRecords(ctx, 1, func(rec *engine.Record) error {
		done++
		p.set(done)
		batch = append(batch, rec)
		if len(batch) == importDecisionBatch || (limit > 0 && sum.Imported+len(batch) >= limit) {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if errors.Is(err, errLimit) {
		return true, nil
	}
	return false, err
}

// errLimit ends an import at --limit.
var errLimit = errors.New("import limit reached")

// setCursors points the review queue's and the webhook reader's cursors at
// the cluster's next decision, and returns that sequence number. The
// single node's cursors count its own sequence numbers, which the
// imported decisions do not keep: copied, they would make the readers
// re-deliver or skip. Everything before the import was read on the single
// node (its review items and webhook outbox are copied), so the readers
// start after the imported decisions; a cursor already further (a cluster
// that ran) is left alone.
func setCursors(ctx context.Context, t *clusterTarget) (uint64, error) {
	settled, err := t.decisions.SettledSeq(ctx)
	if err != nil {
		return 0, err
	}
	next := settled + 1
	err = t.kv.Update(ctx, func(tx kv.Tx) error {
		for _, key := range prefixesWith(kvCursor) {
			v, err := tx.Get([]byte(key))
			if err == nil && len(v) == 8 && binary.BigEndian.Uint64(v) >= next {
				continue
			}
			if err != nil && !errors.Is(err, kv.ErrNotFound) {
				return err
			}
			if err := tx.Set([]byte(key), binary.BigEndian.AppendUint64(nil, next)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("set the readers' cursors: %w", err)
	}
	return next, nil
}
