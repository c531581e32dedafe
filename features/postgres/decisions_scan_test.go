package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features/postgres"
	"github.com/riskengine/risk/features/postgres/pgtest"
)

// scanAll returns the sequence numbers ScanRecords yields from from.
func scanAll(tb testing.TB, d *postgres.Decisions, from uint64) []uint64 {
	tb.Helper()
	var seqs []uint64
	err := d.ScanRecords(context.Background(), from, func(rec *engine.Record) error {
		seqs = append(seqs, rec.Seq)
		return nil
	})
	if err != nil {
		tb.Fatalf("scan: %v", err)
	}
	return seqs
}

// waitSettled waits until no transaction that wrote a decision is older
// than the oldest open one, so a scan sees every committed row. Other
// tests on the server may hold the horizon back for a moment; this waits
// for the condition itself, bounded by a deadline, not for a guessed time.
func waitSettled(tb testing.TB, db *postgres.DB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var settled bool
		err := db.Pool.QueryRow(ctx, `SELECT coalesce(pg_snapshot_xmin(pg_current_snapshot()) > max(xid), true) FROM decisions`).Scan(&settled)
		if err != nil {
			tb.Fatalf("settled: %v", err)
		}
		if settled {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			tb.Fatal("decisions did not settle: a transaction stays open on the server")
		}
	}
}

func TestDecisionsScanRecordsOrder(t *testing.T) {
	t.Parallel()
	d, db := newLog(t)
	var want []uint64
	for i := range 7 {
		rec := record(fmt.Sprintf("tx_%d", i), jan2026, "acc", "fp", engine.Allow)
		commit(t, d, rec)
		want = append(want, rec.Seq)
	}
	waitSettled(t, db)
	if got := scanAll(t, d, 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("scan from 0: %v, want %v", got, want)
	}
	if got := scanAll(t, d, want[4]); fmt.Sprint(got) != fmt.Sprint(want[4:]) {
		t.Errorf("scan from %d: %v, want %v", want[4], got, want[4:])
	}
	stop := fmt.Errorf("stop")
	n := 0
	err := d.ScanRecords(context.Background(), 0, func(*engine.Record) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 2 {
		t.Errorf("scan stopped by fn: %v after %d records, want stop after 2", err, n)
	}
}

// TestDecisionsScanRecordsHoldsBack opens a transaction that draws a lower
// seq and stays open while higher seqs commit: a scan must not pass it.
// Not parallel: the open transaction holds back every scan on the server.
func TestDecisionsScanRecordsHoldsBack(t *testing.T) {
	d, db := newLog(t)
	ctx := context.Background()
	before := record("tx_before", jan2026, "acc", "fp", engine.Allow)
	commit(t, d, before)
	if err := d.EnsurePartition(ctx, jan2026); err != nil {
		t.Fatal(err)
	}

	// Another node's batch, caught between drawing its seq and COMMIT.
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var seqs []int64
	if err := tx.QueryRow(ctx, "SELECT draw_decision_seqs(1)").Scan(&seqs); err != nil {
		t.Fatal(err)
	}
	held := uint64(seqs[0])
	heldID := engine.DecisionID("tx_held")
	if _, err := tx.Exec(ctx, "INSERT INTO decision_txids VALUES ('tx_held', $1, $2)", heldID, jan2026); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`{"v":1,"id":%q,"transaction_id":"tx_held","outcome":"allow","evaluated_at":%q,"payment":{"transaction_id":"tx_held"}}`,
		heldID, jan2026.Format(time.RFC3339Nano))
	if _, err := tx.Exec(ctx, `INSERT INTO decisions (seq, decision_id, transaction_id, outcome, score, ruleset_version, evaluated_at, record)
		VALUES ($1, $2, 'tx_held', 'allow', 0, 0, $3, $4::jsonb)`, seqs[0], heldID, jan2026, doc); err != nil {
		t.Fatal(err)
	}

	after := []*engine.Record{
		record("tx_after1", jan2026, "acc", "fp", engine.Allow),
		record("tx_after2", jan2026, "acc", "fp", engine.Deny),
	}
	commit(t, d, after...)
	for _, rec := range after {
		if rec.Seq <= held {
			t.Fatalf("seq %d committed after the held %d", rec.Seq, held)
		}
	}
	for _, seq := range scanAll(t, d, 0) {
		if seq >= held {
			t.Errorf("scan returned seq %d while seq %d is uncommitted", seq, held)
		}
	}
	if got := scanAll(t, d, held); len(got) != 0 {
		t.Errorf("scan from the held seq: %v, want nothing yet", got)
	}
	if s, err := d.SettledSeq(ctx); err != nil || s >= held {
		t.Errorf("settled seq %d, %v while seq %d is uncommitted; want below it", s, err, held)
	}

	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitSettled(t, db)
	want := []uint64{before.Seq, held, after[0].Seq, after[1].Seq}
	if got := scanAll(t, d, 0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("scan after the commit: %v, want %v", got, want)
	}
	if s, err := d.SettledSeq(ctx); err != nil || s != after[1].Seq {
		t.Errorf("settled seq %d, %v; want %d", s, err, after[1].Seq)
	}
}

// TestDecisionsScanRecordsCursorNeverSkips follows the log with a cursor
// while two nodes commit: every committed seq must be seen exactly once,
// which fails if a lower seq ever became visible after a higher one was
// returned.
func TestDecisionsScanRecordsCursorNeverSkips(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	db := openDB(t, url, schema)
	nodes := []*postgres.Decisions{
		newDecisions(t, db, postgres.DecisionOptions{MaxBatch: 4}),
		newDecisions(t, openDB(t, url, schema), postgres.DecisionOptions{MaxBatch: 4}),
	}
	if err := nodes[0].EnsurePartition(context.Background(), jan2026); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 25
	committed := make(chan uint64, writers*each)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					rec := record(fmt.Sprintf("tx_%d_%d", w, i), jan2026, "acc", "fp", engine.Allow)
					if err := nodes[w%2].Commit(context.Background(), rec); err != nil {
						t.Errorf("commit: %v", err)
						return
					}
					committed <- rec.Seq
				}
			}()
		}
		wg.Wait()
	}()

	var seen []uint64
	var cursor uint64
	follow := func() {
		err := nodes[1].ScanRecords(context.Background(), cursor, func(rec *engine.Record) error {
			seen = append(seen, rec.Seq)
			cursor = rec.Seq + 1
			return nil
		})
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			follow()
		}
	}
	waitSettled(t, db)
	follow()
	close(committed)
	var want []uint64
	for s := range committed {
		want = append(want, s)
	}
	slices.Sort(want)
	if !slices.Equal(seen, want) {
		t.Errorf("followed %d seqs, committed %d:\nseen %v\nwant %v", len(seen), len(want), seen, want)
	}
}

// TestDecisionsScanRecordsDecodesOnce: a second reader of the same part of
// the log gets the documents the first decoded, as equal records with the
// labels as they are now, and a change one reader makes to its record does
// not reach the other.
func TestDecisionsScanRecordsDecodesOnce(t *testing.T) {
	t.Parallel()
	d, db := newLog(t)
	var recs []*engine.Record
	for i := range 5 {
		recs = append(recs, fullRecord(fmt.Sprintf("tx_once_%c", 'a'+i), jan2026.Add(time.Duration(i)*time.Second)))
	}
	commit(t, d, recs...)
	waitSettled(t, db)
	read := func() []*engine.Record {
		var out []*engine.Record
		if err := d.ScanRecords(context.Background(), 0, func(rec *engine.Record) error {
			out = append(out, rec)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	first := read()
	if len(first) != len(recs) {
		t.Fatalf("first scan read %d records, want %d", len(first), len(recs))
	}
	hits := postgres.RecentHits(d)
	first[0].Outcome = engine.Allow // a reader changing its own copy
	label := engine.Label{Label: engine.LabelFraud, Source: "gateway", CreatedAt: jan2026}
	if _, _, err := d.AddLabel(context.Background(), recs[1].ID, label); err != nil {
		t.Fatal(err)
	}
	second := read()
	if got := postgres.RecentHits(d) - hits; got != uint64(len(recs)) {
		t.Errorf("second scan found %d of %d documents decoded, want all", got, len(recs))
	}
	for i, rec := range second {
		want := *recs[i]
		want.Seq = rec.Seq
		if i == 1 {
			want.Labels = []engine.Label{label}
		}
		sameRecord(t, fmt.Sprintf("second scan, record %d", i), rec, &want)
	}
}
