package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/riskengine/risk/admin"
	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/keyspace"
	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/features/limits"
)

// Defaults of `risk cluster verify`.
const (
	defaultVerifySample   = 200
	defaultVerifyFeatures = 50
)

// clusterVerifyCommand is `risk cluster verify`.
func clusterVerifyCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("risk cluster verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cc clusterConfig
	clusterFlags(fs, &cc)
	dataDir := fs.String("data", "", "the stopped single node's data directory")
	sample := fs.Int("sample", defaultVerifySample, "how many decisions, picked at random, to compare field by field")
	recent := fs.Int("features-sample", defaultVerifyFeatures, "how many of the newest payments to compute features for on both sides (needs --redis)")
	limitsEntity := fs.String("limits-entity", env("RISK_LIMITS_ENTITY", limits.EntityAccount), "what the nodes keep dynamic limits per, as the nodes' --limits-entity [RISK_LIMITS_ENTITY]")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: risk cluster verify --data DIR --postgres URL [--redis URL | --redis-cluster ADDRS] [--redis-prefix P]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" {
		fs.Usage()
		return errors.New("cluster verify: --data is required")
	}
	src, err := openSource(ctx, *dataDir, "", *limitsEntity, stderr)
	if err != nil {
		return err
	}
	defer src.cleanup()
	t, err := openTarget(ctx, cc, *limitsEntity, false)
	if err != nil {
		return err
	}
	defer t.close()
	v := &verifier{src: src, t: t, out: stdout}
	if err := v.run(ctx, *sample, *recent); err != nil {
		return err
	}
	if v.diffs > 0 {
		return fmt.Errorf("cluster verify: %d differences", v.diffs)
	}
	fmt.Fprintln(stdout, "the cluster holds what the single node holds")
	return nil
}

// verifier compares a single node with a cluster and prints what differs.
type verifier struct {
	src   *importSource
	t     *clusterTarget
	out   io.Writer
	diffs int
}

func (v *verifier) differ(format string, a ...any) {
	v.diffs++
	fmt.Fprintf(v.out, "DIFF "+format+"\n", a...)
}

func (v *verifier) run(ctx context.Context, sample, recent int) error {
	// One pass over the single node's log: the count, a uniform sample
	// (reservoir, fixed seed so a run is repeatable) and the newest ones.
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		n      int64
		picked []*engine.Record
		newest []*engine.Record
	)
	err := v.src.store.ScanRecords(ctx, 1, func(rec *engine.Record) error {
		n++
		switch {
		case len(picked) < sample:
			picked = append(picked, rec)
		case sample > 0:
			if j := rng.Int64N(n); j < int64(sample) {
				picked[j] = rec
			}
		}
		if recent > 0 {
			if len(newest) == recent {
				newest = newest[1:]
			}
			newest = append(newest, rec)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the single node's decisions: %w", err)
	}
	got, err := v.t.decisions.Count(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(v.out, "decisions: single node %d, cluster %d\n", n, got)
	if got != n {
		v.differ("decisions: single node %d, cluster %d", n, got)
	}
	if err := v.keys(ctx); err != nil {
		return err
	}
	for _, rec := range picked {
		if err := v.record(ctx, rec); err != nil {
			return err
		}
	}
	fmt.Fprintf(v.out, "compared %d decisions field by field\n", len(picked))
	if v.t.state == nil {
		fmt.Fprintln(v.out, "features not compared: no --redis")
		return nil
	}
	return v.features(ctx, newest)
}

// keys compares the number of keys under every prefix an import copies.
// The cluster's trail also holds the imports' own entries, which are not
// counted.
func (v *verifier) keys(ctx context.Context) error {
	imports := 0
	for cursor := ""; ; {
		es, next, err := admin.NewAudit(v.t.kv, nil).Query(ctx, admin.AuditQuery{Action: "cluster.import", Limit: admin.MaxAuditPage, Cursor: cursor})
		if err != nil {
			return err
		}
		imports += len(es)
		if cursor = next; next == "" {
			break
		}
	}
	for _, prefix := range prefixesWith(kvCopy) {
		var a, b int
		err := v.src.store.ScanKV(ctx, []byte(prefix), func([]byte, []byte, time.Time) error { a++; return nil })
		if err != nil {
			return err
		}
		err = v.t.kv.View(ctx, func(tx kv.Tx) error {
			return tx.Scan([]byte(prefix), kv.ScanOptions{KeysOnly: true}, func([]byte, []byte) error { b++; return nil })
		})
		if err != nil {
			return err
		}
		if prefix == keyspace.Audit {
			b -= imports
		}
		fmt.Fprintf(v.out, "keys %s: single node %d, cluster %d\n", prefix, a, b)
		if a != b {
			v.differ("keys %s: single node %d, cluster %d", prefix, a, b)
		}
	}
	return nil
}

// record compares one decision on both sides, as JSON of the engine's
// record: every field but the sequence number, which is the cluster's own.
func (v *verifier) record(ctx context.Context, rec *engine.Record) error {
	other, err := v.t.decisions.Get(ctx, rec.ID)
	if errors.Is(err, engine.ErrNotFound) {
		v.differ("decision %s (transaction %s): missing in the cluster", rec.ID, rec.TransactionID)
		return nil
	}
	if err != nil {
		return err
	}
	a, b := recordFields(rec), recordFields(other)
	for _, k := range sortedKeys(a, b) {
		if !bytes.Equal(a[k], b[k]) {
			v.differ("decision %s field %s: single node %s, cluster %s", rec.ID, k, a[k], b[k])
		}
	}
	return nil
}

// recordFields is rec as JSON, field by field, without Seq.
func recordFields(rec *engine.Record) map[string]json.RawMessage {
	c := *rec
	c.Seq = 0
	if len(c.Labels) == 0 {
		c.Labels = nil
	}
	b, _ := json.Marshal(&c)
	m := map[string]json.RawMessage{}
	_ = json.Unmarshal(b, &m)
	return m
}

func sortedKeys(a, b map[string]json.RawMessage) []string {
	var ks []string
	for k := range a {
		ks = append(ks, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

// features computes the features of recent payments on both sides, each
// at the payment's own time, and compares them.
func (v *verifier) features(ctx context.Context, recs []*engine.Record) error {
	if _, err := v.t.loadDefinitions(ctx); err != nil {
		return err
	}
	for _, rec := range recs {
		a, err := v.src.store.Features(ctx, &rec.Payment, nil)
		if err != nil {
			return fmt.Errorf("features of %s on the single node: %w", rec.TransactionID, err)
		}
		b, err := v.t.store.Features(ctx, &rec.Payment, nil)
		if err != nil {
			v.differ("features of %s: cluster: %v", rec.TransactionID, err)
			continue
		}
		byName := map[string]engine.FeatureValue{}
		for _, f := range b {
			byName[f.Name] = f
		}
		for _, f := range a {
			g, ok := byName[f.Name]
			switch {
			case !ok:
				v.differ("features of %s: %s missing in the cluster", rec.TransactionID, f.Name)
			case f.Value != g.Value || f.Ready != g.Ready:
				v.differ("features of %s: %s = %v (ready %v) on the single node, %v (ready %v) in the cluster",
					rec.TransactionID, f.Name, f.Value, f.Ready, g.Value, g.Ready)
			}
		}
		if len(b) != len(a) {
			v.differ("features of %s: %d on the single node, %d in the cluster", rec.TransactionID, len(a), len(b))
		}
	}
	fmt.Fprintf(v.out, "compared the features of %d payments\n", len(recs))
	return nil
}
